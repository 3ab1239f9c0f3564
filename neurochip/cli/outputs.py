"""What the command shows and writes: progress bars, the summary, the JSON, reports, exports.

Every file is written atomically (:func:`neurochip.atomic.atomic_write_bytes`
or a writer that is atomic itself) at the end of the run, after the
checkpoint; a write that fails is one line (:class:`~neurochip.errors.UserError`).
"""
from __future__ import annotations

import sys

from ..errors import UserError
from ..trainer import Callback


def progress_bar(total: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.5)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr (none with ``--quiet``)."""

    def __init__(self, n_batches: int, batch_size: int, quiet: bool):
        self.n_batches, self.bs, self.quiet = n_batches, batch_size, quiet
        self.bar = None

    def on_epoch_begin(self, state) -> None:
        self.bar = progress_bar(self.n_batches * self.bs, f"epoch {state.epoch + 1}/{state.epochs}",
                                self.quiet)
        if self.bar is not None:
            self.bar.update(state.batch * self.bs)

    def on_batch_end(self, state, batch) -> None:
        if self.bar is not None:
            self.bar.update(self.bs)
            self.bar.set_postfix(loss=f"{batch.step.loss:.3f}", refresh=False)

    def on_epoch_end(self, state, record) -> None:
        self.on_train_end(state)

    def on_train_end(self, state) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochLog(Callback):
    """One line per epoch through ``log`` (train error on the fly, test error, seconds)."""

    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, state, record) -> None:
        val = f"validation error {record['val_error']:.2%}, " if "val_error" in record else ""
        self.log(f"epoch {record['epoch']}/{state.epochs}: train error "
                 f"{record['train_error_on_the_fly']:.2%} (on the fly), {val}"
                 f"test error {record['test_error']:.2%}, {record['seconds']:.1f} s")


def budget_report(net, tally, sample=None):
    """The hardware-budget report of the run and its short table.

    ``sample``: ``(x_fp, label)`` of one image to record (spike raster and
    per-sample counts) for the NeuroBench metrics and the figure; the EP update
    of that recording is applied to a copy, never to ``net``.
    """
    from ..budget.report import build_report, format_table, simulate_sample
    counts = raster = None
    if sample is not None:
        counts, raster, _ = simulate_sample(net, sample[0], sample[1], train=True)
    report = build_report(net, tally, sample_counts=counts, sample_raster=raster)
    return report, format_table(report, short=True)


def write_output(flag: str, path: str, writer) -> None:
    try:
        writer()
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None


def json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def result_record(net, tally, report, history, errors: dict, run: dict, debug: dict,
                  resumed_from) -> dict:
    """Every figure of the run, in the order and with the keys of ``--json``.

    ``errors``: test_error, train_error, train_error_method, test_loss;
    ``run``: train_seconds, dataset, preset, epochs, backend, train_samples,
    test_samples.  ``seconds`` is None until the caller stops the clock.
    """
    from ..kinds import K_SPIKES
    samples = max(tally.samples_train + tally.samples_eval, 1)
    spikes_per_sample = float(tally.counts[..., K_SPIKES].sum()) / samples
    return {
        "test_error": errors["test_error"], "train_error": errors["train_error"],
        "train_error_method": errors["train_error_method"], "test_loss": errors["test_loss"],
        "seconds": None, "train_seconds": run["train_seconds"],
        "bits": net.widths.weight_bits, "widths": dict(vars(net.widths)),
        "dataset": run["dataset"], "preset": run["preset"], "arch": str(net.arch),
        "hyper": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(net.hyper).items()},
        "seed": net.seed, "epochs": run["epochs"], "updates": net.updates, "backend": run["backend"],
        "train_samples": run["train_samples"], "test_samples": run["test_samples"],
        "spikes_per_sample": spikes_per_sample,
        "saturations": tally.total_saturations(), "saturations_by_kind": tally.saturations(),
        "weights_sha256": net.weights_sha256(),
        "weights_sha256_order": "for l=1..L: weights (PyTorch layout, C order) then biases, little-endian int32",
        "history": history, "counts": tally.as_dict(), "budget": report,
        "debug": debug,
        "resumed_from": resumed_from,
    }


def print_summary(result: dict, net, tally, table: str, seconds: float) -> None:
    """The human-readable result on stdout."""
    r = result
    print(f"\nneurochip {net.arch}  ({r['preset'] or 'custom'}, {r['dataset']}, {r['backend']})")
    print(f"  test error   {r['test_error']:7.2%}   ({r['test_samples']} held-out samples)")
    train_error = "      -" if r["train_error"] is None else f"{r['train_error']:7.2%}"
    print(f"  train error  {train_error}   ({r['train_error_method']})")
    print(f"  bits         weights {net.widths.weight_bits}, state S={net.widths.state_bits}, traces "
          f"{net.widths.trace_bits}, biases {net.widths.bias_bits}")
    print(f"  spikes       {r['spikes_per_sample']:,.0f} per sample (all layers and phases)")
    print(f"  saturations  {tally.total_saturations()}  " +
          ", ".join(f"{k} {v}" for k, v in r["saturations_by_kind"].items()))
    best = r.get("best")
    if best is not None:
        print(f"  validation   {best['val_error']:7.2%}   (best, epoch {best['epoch']}, of "
              f"{r['val_samples']} held-out training samples; these weights are evaluated)")
    health = r.get("learning_health")
    if health is not None:
        print("  learning     " + (
            f"STOPPED (first stalled at update {health['stopped_since_update']}): "
            + "; ".join(health["reasons"]) if health["stopped"]
            else ("; ".join(health["reasons"]) or "healthy")))
    print(f"  updates      {net.updates}   time {seconds:.1f} s   weights sha256 {net.weights_sha256()[:16]}…")
    print()
    print(table)


def write_files(args, net, result: dict, report: dict) -> None:
    """``--json``, ``--report``, ``--figure``, ``--export-lava``, ``--export-nir``: each atomic."""
    import json

    from ..atomic import atomic_write_bytes
    if args.json:
        data = (json.dumps(result, indent=2, default=json_default) + "\n").encode()
        write_output("--json", args.json, lambda: atomic_write_bytes(args.json, data))
    if args.report:
        from ..budget.report import write_report
        write_output("--report", args.report, lambda: write_report(report, args.report))
    if args.figure:
        from ..budget.report import plot_report
        write_output("--figure", args.figure, lambda: plot_report(report, args.figure))
    for flag, name in (("export_lava", "lava"), ("export_nir", "nir")):
        path = getattr(args, flag)
        if path:
            from .. import registry
            export = registry.get("neurochip.exporters", name)
            write_output(f"--export-{name}", path, lambda: export(net, path))

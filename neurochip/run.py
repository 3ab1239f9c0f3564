"""``python -m neurochip.run``: train and evaluate a spiking conv EP network in fixed point.

Progress goes to stderr, results to stdout; ``--json`` writes every figure.
Bad input gives one line on stderr and exit code 2; nothing already written
is overwritten or left half-written (outputs are checked before the run and
written atomically after it).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time

T_START = time.perf_counter()

from .errors import UserError  # noqa: E402

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UserError(message)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like '0.1,0.05', got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from .network import PRESETS
    presets = ", ".join(f"{k}" for k in PRESETS)
    p = _Parser(
        prog="python -m neurochip.run",
        description="Train and evaluate a spiking convolutional network with three-phase "
                    "Equilibrium Propagation, every number a B-bit integer held and updated as "
                    "an on-chip learning core would (docs/numerics.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Examples:\n  python -m neurochip.run --bits 8\n"
               "  python -m neurochip.run --preset mnist-small --data-dir ../shared/data/mnist\n"
               "  python -m neurochip.run --load net.npz --json out.json")
    g = p.add_argument_group("network")
    g.add_argument("--preset", default=None, help=f"named preset ({presets}); default 'digits', "
                   "or the one matching --dataset")
    g.add_argument("--arch", default=None,
                   help="architecture string CxHxW:layers, e.g. 1x28x28:c128k3-c256k3-f512-f10 "
                        "(c<ch>k<k>[p<pad>] = conv + 2x2 pool, f<n> = fully connected)")
    g.add_argument("--pool", choices=("avg", "max"), default=None,
                   help="avg: index-free sum-pool + NN upsampling (default); max: max-pool/unpool ablation")
    g.add_argument("--load", metavar="CKPT", default=None, help="evaluate a saved checkpoint (no training)")
    g.add_argument("--resume", metavar="CKPT", default=None,
                   help="continue an interrupted training run from CKPT (and keep checkpointing to it)")
    w = p.add_argument_group("bit widths")
    w.add_argument("--bits", type=int, default=None, help="weight bits B (signed), 2..16 (default 8)")
    w.add_argument("--state-bits", type=int, default=None, help="state fraction bits S, ONE = 2**S (default 12)")
    w.add_argument("--trace-bits", type=int, default=None, help="trace register bits (default 8)")
    w.add_argument("--bias-bits", type=int, default=None, help="bias register bits (default 16)")
    h = p.add_argument_group("hyper-parameters (defaults from the preset)")
    h.add_argument("--beta", type=float, default=None, help="nudge strength, (0, 1]")
    h.add_argument("--epsilon", type=float, default=None, help="Euler step, (0, 1]")
    h.add_argument("--lambda", dest="lam", type=float, default=None,
                   help="predictive-coding factor of encoder/decoder, (0, 1]")
    h.add_argument("--alpha", type=float, default=None, help="feedback upsampling scale, (0, 1]")
    h.add_argument("--theta", type=float, default=None, help="sigma-delta threshold, (0, 1]")
    h.add_argument("--t1", type=int, default=None, help="free-phase steps")
    h.add_argument("--t2", type=int, default=None, help="steps of each nudged phase")
    h.add_argument("--lrs", type=_floats, default=None, help="per-layer learning rates, e.g. 0.1,0.05")
    h.add_argument("--batch-size", type=int, default=None, help="minibatch size")
    h.add_argument("--update-scale", choices=("quarter", "alpha"), default=None,
                   help="conv update uses the exact 1/4 of the average pool, or alpha")
    t = p.add_argument_group("run")
    t.add_argument("--dataset", default=None, help="digits (embedded, default), mnist, fashion-mnist")
    t.add_argument("--data-dir", default=None, help="folder with the IDX files (or env NEUROCHIP_DATA)")
    t.add_argument("--download", action="store_true", help="download missing IDX files (checksummed)")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default from the preset)")
    t.add_argument("--train-samples", type=int, default=None, help="use only the first N training samples")
    t.add_argument("--test-samples", type=int, default=None, help="use only the first N test samples")
    t.add_argument("--eval-train", action="store_true",
                   help="measure the train error with a final free-phase pass (default: on the fly in the last epoch)")
    t.add_argument("--seed", type=int, default=0, help="seed of the initial weights, data order and rounding")
    t.add_argument("--backend", choices=("numba", "torch"), default="numba",
                   help="numba: event-driven integer core; torch: the bit-exact PyTorch reference")
    t.add_argument("--device", default="cpu", help="torch backend device (cpu, cuda)")
    t.add_argument("--threads", type=int, default=None, help="Numba threads (default: all cores)")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="N",
                   help="with --save/--resume, write the checkpoint every N updates")
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="PATH", default=None, help="write every figure as JSON")
    o.add_argument("--save", metavar="PATH", default=None, help="save the trained network (checkpoint .npz)")
    o.add_argument("--report", metavar="PATH", default=None, help="hardware-budget report (.json or .md)")
    o.add_argument("--figure", metavar="PATH", default=None, help="hardware-budget PNG figure")
    o.add_argument("--export-lava", metavar="PATH", default=None, help="export the network for Lava (HDF5)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# ----------------------------------------------------------------- helpers
def _check_output(path: str | None, flag: str) -> None:
    """Fail before any work if an output cannot be written."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"{flag} {path}: is a directory")
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{flag} {path}: folder {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: file is not writable")


def _positive(name: str, value, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def make_network(args):
    """The network from --load/--resume, or from preset + overrides."""
    import dataclasses
    from .checkpoint import load_checkpoint
    from .network import Architecture, Hyper, Network, Widths, get_preset

    training = None
    if args.load or args.resume:
        net, training = load_checkpoint(args.load or args.resume, expect_arch=args.arch)
        preset_name = net.preset
        epochs = (training or {}).get("epochs")
        if args.epochs is not None:
            epochs = args.epochs
        dataset = (training or {}).get("dataset") or args.dataset
        return net, training, dataset or "digits", epochs, preset_name
    dataset = args.dataset
    if args.preset is None:
        args.preset = {"mnist": "mnist-small", "fashion-mnist": "mnist-small"}.get(dataset or "", "digits")
    preset = get_preset(args.preset)
    dataset = dataset or preset.dataset
    arch = Architecture.parse(args.arch) if args.arch else Architecture.parse(preset.arch)
    hyper = preset.hyper
    over = {k: v for k, v in (("beta", args.beta), ("epsilon", args.epsilon), ("lam", args.lam),
                              ("alpha", args.alpha), ("theta", args.theta), ("t1", args.t1),
                              ("t2", args.t2), ("batch_size", args.batch_size), ("pool", args.pool),
                              ("update_scale", args.update_scale)) if v is not None}
    if args.lrs is not None:
        over["lrs"] = tuple(args.lrs)
    elif len(hyper.lrs) != arch.n_layers:
        # a custom architecture: first rate for hidden layers, last for the readout
        over["lrs"] = tuple([hyper.lrs[0]] * (arch.n_layers - 1) + [hyper.lrs[-1]])
    hyper = dataclasses.replace(hyper, **over)
    widths = preset.widths
    wover = {k: v for k, v in (("weight_bits", args.bits), ("state_bits", args.state_bits),
                               ("trace_bits", args.trace_bits), ("bias_bits", args.bias_bits))
             if v is not None}
    widths = dataclasses.replace(widths, **wover)
    net = Network.create(arch, hyper, widths, seed=args.seed, preset=args.preset)
    epochs = args.epochs if args.epochs is not None else preset.epochs
    return net, None, dataset, epochs, args.preset


def _progress(total: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def _budget_table(net, tally, short=True):
    try:
        from .budget.report import build_report, format_table
    except ImportError:  # TODO(lead): remove once neurochip.budget lands
        return {}, "(hardware-budget report unavailable)"
    report = build_report(net, tally)
    return report, format_table(report, short=short)


# ------------------------------------------------------------------- main
def run(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("json", "save", "report", "figure", "export_lava"):
        _check_output(getattr(args, flag), "--" + flag.replace("_", "-"))
    _positive("--epochs", args.epochs, allow_zero=True)
    _positive("--train-samples", args.train_samples)
    _positive("--test-samples", args.test_samples)
    _positive("--threads", args.threads)
    _positive("--checkpoint-every", args.checkpoint_every)
    if args.load and args.resume:
        raise UserError("--load and --resume exclude each other")
    if args.threads is not None:
        import numba
        if args.threads > numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"--threads {args.threads} exceeds the {numba.config.NUMBA_NUM_THREADS} available")
        numba.set_num_threads(args.threads)

    import numpy as np
    from .checkpoint import save_checkpoint
    from .data import load_dataset
    from .trainer import Tally, evaluate, make_backend, train_epoch

    net, training, dataset_name, epochs, preset_name = make_network(args)
    if args.resume is None and args.save is None:
        ckpt_path = None
    else:
        ckpt_path = args.resume or args.save
    ds = load_dataset(dataset_name, args.data_dir) if not args.download else \
        load_dataset_download(dataset_name, args.data_dir)
    if tuple(ds.input_shape) != tuple(net.arch.input_shape):
        raise UserError(f"dataset {dataset_name} has images of shape {ds.input_shape}, but the "
                        f"architecture {net.arch} expects {net.arch.input_shape}")
    if net.arch.num_classes < ds.num_classes:
        raise UserError(f"the architecture has {net.arch.num_classes} outputs but dataset "
                        f"{dataset_name} has {ds.num_classes} classes")
    ds = ds.subset(args.train_samples, args.test_samples)
    if not args.load and len(ds.train_y) < net.hyper.batch_size:
        raise UserError(f"--batch-size {net.hyper.batch_size} exceeds the {len(ds.train_y)} training samples")
    sbits = net.widths.state_bits
    x_train, x_test = ds.quantised(ds.train_x, sbits), ds.quantised(ds.test_x, sbits)
    backend = make_backend(net, args.backend, **({"device": args.device} if args.backend == "torch" else {}))

    tally = Tally.zeros(net.arch.n_layers)
    history = list((training or {}).get("history", []))
    start_epoch = int((training or {}).get("epoch", 0))
    start_batch = int((training or {}).get("batch", 0))
    if training and "tally_counts" in training:
        tally.counts += np.asarray(training["tally_counts"], np.int64).reshape(tally.counts.shape)
    train_error = float("nan")
    train_seconds = 0.0
    bs = net.hyper.batch_size
    n_batches = len(ds.train_y) // bs
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(f"neurochip: {net.arch} | {dataset_name} {len(ds.train_y)}/{len(ds.test_y)} | "
        f"{net.widths.weight_bits}-bit weights, S={sbits} | T1={net.hyper.t1} T2={net.hyper.t2} "
        f"batch {bs} | {args.backend} backend")

    def training_state(epoch, batch):
        return {"epoch": epoch, "batch": batch, "epochs": epochs, "dataset": dataset_name,
                "history": history, "tally_counts": tally.counts.ravel().tolist()}

    interrupted = False
    current = {"epoch": start_epoch, "batch": start_batch}
    if not args.load:
        prev = signal.getsignal(signal.SIGINT)
        try:
            for epoch in range(start_epoch, epochs or 0):
                bar = _progress(n_batches * bs, f"epoch {epoch + 1}/{epochs}", args.quiet)
                if bar is not None:
                    bar.update((start_batch if epoch == start_epoch else 0) * bs)
                t0 = time.perf_counter()

                def on_batch(i, step, elapsed, epoch=epoch, bar=bar):
                    current["epoch"], current["batch"] = epoch, i + 1
                    if bar is not None:
                        bar.update(bs)
                        bar.set_postfix(loss=f"{step.loss:.3f}", refresh=False)
                    if ckpt_path and (net.updates % args.checkpoint_every == 0):
                        save_checkpoint(ckpt_path, net, training_state(epoch, i + 1))

                sb = start_batch if epoch == start_epoch else 0
                err, loss = train_epoch(backend, net, x_train, ds.train_y, epoch, tally, sb, on_batch)
                train_seconds += time.perf_counter() - t0
                if bar is not None:
                    bar.close()
                test_err, test_loss = evaluate(backend, net, x_test, ds.test_y, tally=None)
                train_error = err
                history.append({"epoch": epoch + 1, "train_error_on_the_fly": err, "train_loss": loss,
                                "test_error": test_err, "test_loss": test_loss,
                                "seconds": round(time.perf_counter() - t0, 3)})
                log(f"epoch {epoch + 1}/{epochs}: train error {err:.2%} (on the fly), "
                    f"test error {test_err:.2%}, {time.perf_counter() - t0:.1f} s")
                current["epoch"], current["batch"] = epoch + 1, 0
                if ckpt_path:
                    save_checkpoint(ckpt_path, net, training_state(epoch + 1, 0))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGINT, prev)
    if interrupted:
        path = ckpt_path or "neurochip-interrupted.npz"
        save_checkpoint(path, net, training_state(current["epoch"], current["batch"]))
        print(f"interrupted: checkpoint saved to {path}; continue with --resume {path}", file=sys.stderr)
        return EXIT_INTERRUPTED

    bar = _progress(len(ds.test_y), "test", args.quiet)
    test_error, test_loss = evaluate(backend, net, x_test, ds.test_y, tally=tally,
                                     progress=(bar.update if bar else None))
    if bar is not None:
        bar.close()
    if args.eval_train or args.load or math.isnan(train_error):
        bar = _progress(len(ds.train_y), "train eval", args.quiet)
        train_error, _ = evaluate(backend, net, x_train, ds.train_y,
                                  progress=(bar.update if bar else None))
        if bar is not None:
            bar.close()
        train_error_method = "free-phase pass after training"
    else:
        train_error_method = "on the fly during the last epoch"

    report, table = _budget_table(net, tally)
    samples = max(tally.samples_train + tally.samples_eval, 1)
    from .core import K_SPIKES
    spikes_per_sample = float(tally.counts[..., K_SPIKES].sum()) / samples
    seconds = time.perf_counter() - T_START
    result = {
        "test_error": test_error, "train_error": train_error,
        "train_error_method": train_error_method, "test_loss": test_loss,
        "seconds": round(seconds, 3), "train_seconds": round(train_seconds, 3),
        "bits": net.widths.weight_bits, "widths": dict(vars(net.widths)),
        "dataset": dataset_name, "preset": preset_name, "arch": str(net.arch),
        "hyper": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(net.hyper).items()},
        "seed": net.seed, "epochs": epochs, "updates": net.updates, "backend": args.backend,
        "train_samples": int(len(ds.train_y)), "test_samples": int(len(ds.test_y)),
        "spikes_per_sample": spikes_per_sample,
        "saturations": tally.total_saturations(), "saturations_by_kind": tally.saturations(),
        "weights_sha256": net.weights_sha256(),
        "weights_sha256_order": "for l=1..L: weights (PyTorch layout, C order) then biases, little-endian int32",
        "history": history, "counts": tally.as_dict(), "budget": report,
    }
    print(f"\nneurochip {net.arch}  ({preset_name or 'custom'}, {dataset_name}, {args.backend})")
    print(f"  test error   {test_error:7.2%}   ({len(ds.test_y)} held-out samples)")
    print(f"  train error  {train_error:7.2%}   ({train_error_method})")
    print(f"  bits         weights {net.widths.weight_bits}, state S={sbits}, traces "
          f"{net.widths.trace_bits}, biases {net.widths.bias_bits}")
    print(f"  spikes       {spikes_per_sample:,.0f} per sample (all layers and phases)")
    sat = tally.saturations()
    print(f"  saturations  {tally.total_saturations()}  " +
          ", ".join(f"{k} {v}" for k, v in sat.items()))
    print(f"  updates      {net.updates}   time {seconds:.1f} s   weights sha256 {net.weights_sha256()[:16]}…")
    print()
    print(table)
    if args.json:
        from .checkpoint import atomic_write_bytes
        atomic_write_bytes(args.json, (json.dumps(result, indent=2, default=_json_default) + "\n").encode())
    if args.report:
        from .budget.report import write_report
        write_report(report, args.report)
    if args.figure:
        from .budget.report import plot_report
        plot_report(net, args.figure)
    if args.save and not args.resume:
        save_checkpoint(args.save, net, training_state(epochs or 0, 0))
    if args.export_lava:
        from mapping.export import export_lava
        export_lava(net, args.export_lava)
    return 0


def load_dataset_download(name, data_dir):
    from .data import load_dataset
    try:
        from .idx import load_idx_dataset
    except ImportError:
        return load_dataset(name, data_dir)
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_dir, download=True)
    return load_dataset(name, data_dir)


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def main(argv=None) -> int:
    try:
        return run(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

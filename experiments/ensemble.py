"""Ensembles of trained runs: ``python -m experiments.ensemble --runs RUN,RUN,... --seeds 0,1,2``.

Ensemble ``k`` = seed ``k`` of each run in ``--runs`` (``STATE/RUN/seedK.npz``), each at its
best-on-validation weights (``--which best``, the weights the headline tables report) or its
latest. Its prediction is the first maximum of the members' summed output states
(:func:`neurochip.ensemble.predict`); one ensemble per seed, no member in two, so the seeds
give independent figures (mean ± std, ddof 1).

For each ensemble: error on the run's validation split (carved as the run carved it: the
checkpoints record dataset, training images and split; every member must record the same
ones, and the seed carves it) and on the test set, each member's own errors in the same pass,
and whether each member's test error equals the one its history recorded at that epoch (it
must: a mismatch exits 1 after writing; a run that recorded none is not compared). The validation figure is optimistic (each member's
epoch was chosen on that split); test error is the figure. Chip cost: the sum of the
members' parameters and Loihi / Loihi 2 cores (``neurochip.budget``).

Output: a table on stdout, every figure with ``--json``, the table with ``--markdown``
(both written whole or not at all); progress on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

from .common import data_dir, fail, log, machine, write_outputs


def parse_list(text: str, what: str) -> list[str]:
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        fail(f"{what} must name at least one, got {text!r}")
    return items


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in parse_list(text, "--seeds")]
    except ValueError:
        fail(f"--seeds must be comma-separated whole numbers, got {text!r}")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        fail(f"--seeds must be distinct whole numbers >= 0, got {text!r}")
    return seeds


def load_members(state: str, runs: list[str], seed: int, which: str):
    """``[(run, net, meta)]`` of ensemble ``seed``; one line and exit 2 on a missing or
    unreadable checkpoint, another seed, or members that disagree on their data."""
    import neurochip as nc
    members = []
    for run in runs:
        path = os.path.join(state, run, f"seed{seed}.npz")
        if not os.path.isfile(path):
            fail(f"{path}: no such checkpoint (run {run!r}, seed {seed})")
        try:
            net, meta = nc.load_checkpoint(path, which=which)
        except nc.UserError as e:
            fail(str(e) if path in str(e) else f"{path}: {e}")
        meta = meta or {}
        if net.seed != seed:
            fail(f"{path}: its network has seed {net.seed}, not {seed}")
        members.append((run, net, meta))
    keys = ("dataset", "train_samples", "val_split")
    first = {k: members[0][2].get(k) for k in keys}
    if first["dataset"] is None:
        fail(f"{runs[0]} seed {seed}: the checkpoint does not record its dataset")
    for run, _, meta in members[1:]:
        theirs = {k: meta.get(k) for k in keys}
        if theirs != first:
            fail(f"seed {seed}: {run} was trained on {theirs}, {runs[0]} on {first}: "
                 "one ensemble needs one validation split")
    return members


def weights_epoch(meta: dict, which: str) -> int | None:
    """The epoch whose weights ``which`` ('best' or 'last') loaded."""
    return (meta.get("best") or {}).get("epoch") if which == "best" else meta.get("epoch")


def recorded_test_error(meta: dict, which: str) -> float | None:
    """The test error the run's history recorded for these weights (None if not recorded)."""
    history = meta.get("history") or []
    epoch = weights_epoch(meta, which)
    for entry in history:
        if entry.get("epoch") == epoch:
            return entry.get("test_error")
    return None


def chip_cost(net) -> dict:
    import neurochip as nc
    report = nc.budget_report(net)
    return {"parameters": int(report["static"]["parameters"]["weights"]
                              + report["static"]["parameters"]["biases"]),
            **{f"{chip}_cores": int(v["cores"]) for chip, v in report["chips"].items()}}


def evaluate_seed(members: list, seed: int, which: str, root: str | None) -> dict:
    """Ensemble ``seed`` of ``members`` (:func:`load_members`) on its validation and test images."""
    import neurochip as nc
    from neurochip.cli.validation import carve_validation
    meta0 = members[0][2]
    try:
        ds = nc.load_dataset(meta0["dataset"], data_dir(meta0["dataset"], root))
    except (nc.UserError, OSError) as e:                # the message names the dataset and folder
        fail(str(e))
    ds = ds.subset(meta0.get("train_samples"), meta0.get("test_samples"))
    rest, val_x, val_y = carve_validation(ds, meta0.get("val_split"), seed)
    nets = [net for _, net, _ in members]
    out = {"seed": seed, "dataset": meta0["dataset"], "val_images": 0 if val_y is None else len(val_y),
           "test_images": len(ds.test_y)}
    t0 = time.perf_counter()
    try:
        test = nc.evaluate_ensemble(nets, ds, "test")
        val = (nc.evaluate_ensemble(nets, dataclasses.replace(rest, test_x=val_x, test_y=val_y), "test")
               if val_y is not None and len(val_y) else None)
    except nc.UserError as e:
        fail(f"seed {seed}: {e}")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["test_error"] = test.ensemble.error
    out["val_error"] = None if val is None else val.ensemble.error
    out["members"] = []
    for i, (run, net, meta) in enumerate(members):
        recorded = recorded_test_error(meta, which)
        out["members"].append({
            "run": run, "arch": str(net.arch), "epoch": weights_epoch(meta, which),
            "test_error": test.members[i].error,
            "val_error": None if val is None else val.members[i].error,
            "recorded_test_error": recorded,
            "matches_record": None if recorded is None else round(recorded, 6) == round(test.members[i].error, 6),
            **chip_cost(net)})
    out["chip_cost"] = {k: sum(m[k] for m in out["members"]) for k in out["members"][0]
                        if k.endswith("_cores") or k == "parameters"}
    log(f"seed {seed}: ensemble test {100 * out['test_error']:.2f} %, members "
        + " / ".join(f"{100 * m['test_error']:.2f}" for m in out["members"]) + f" % ({out['seconds']:.0f} s)")
    return out


def summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "each": values}


def pct(s: dict) -> str:
    std = "" if s["std"] is None else f" ± {100 * s['std']:.2f}"
    return f"{100 * s['mean']:.2f}{std} % ({' / '.join(f'{100 * v:.2f}' for v in s['each'])})"


def markdown(results: dict, command: str) -> str:
    lines = [f"Command: `{command}`  ", f"Machine: {results['machine']}; date {results['date']}; "
             f"weights: {results['which']}.", "",
             "| seed | ensemble validation error | ensemble test error | members' test errors | "
             "members' test errors as recorded | parameters | Loihi / Loihi 2 cores |",
             "|---|---|---|---|---|---|---|"]
    for r in results["seeds"]:
        members = " / ".join(f"{100 * m['test_error']:.2f}" for m in r["members"])
        recorded = " / ".join("-" if m["recorded_test_error"] is None else f"{100 * m['recorded_test_error']:.2f}"
                              for m in r["members"])
        val = "-" if r["val_error"] is None else f"{100 * r['val_error']:.2f} %"
        c = r["chip_cost"]
        lines.append(f"| {r['seed']} | {val} | **{100 * r['test_error']:.2f} %** | {members} % | {recorded} % | "
                     f"{c['parameters']:,} | {c.get('loihi_cores', '-')} / {c.get('loihi2_cores', '-')} |")
    lines += ["", f"Members (in order): {', '.join(f'`{m}`' for m in results['runs'])}.", "",
              f"Ensemble test error over the seeds: **{pct(results['test_error'])}**"]
    if results.get("val_error"):
        lines.append(f"Ensemble validation error (optimistic: each member's epoch was chosen on it): "
                     f"{pct(results['val_error'])}")
    for i, run in enumerate(results["runs"]):
        lines.append(f"`{run}` alone, test error: {pct(results['member_test_error'][i])}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.ensemble", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Example: python -m experiments.ensemble --runs "
                                       "fmnist-medium-drop0.1-e36,fmnist-c48k5-c96k3-drop0.1-e46 --seeds 0,1,2")
    p.add_argument("--runs", required=True, help="comma-separated run names under --state (the members)")
    p.add_argument("--seeds", default="0,1,2", help="one ensemble per seed (default 0,1,2)")
    p.add_argument("--state", default=os.path.join("experiments", "state"),
                   help="folder of the runs' checkpoints (default experiments/state)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="best-on-validation weights (default) or the latest")
    p.add_argument("--data-root", help="folder holding mnist/ and fashion-mnist/ (default ../shared/data)")
    p.add_argument("--threads", type=int, default=0, help="Numba threads (default: Numba's)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--markdown", help="write the table here too")
    a = p.parse_args(argv)
    runs, seeds = parse_list(a.runs, "--runs"), parse_seeds(a.seeds)
    if len(set(runs)) != len(runs):
        fail(f"--runs names a run twice: {a.runs!r}")
    if a.threads < 0:
        fail(f"--threads must be >= 0, got {a.threads}")
    if a.threads:
        import numba
        numba.set_num_threads(a.threads)
    members = {s: load_members(a.state, runs, s, a.which) for s in seeds}     # every input checked first
    per_seed = [evaluate_seed(members[s], s, a.which, a.data_root) for s in seeds]
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d", time.gmtime()), "which": a.which,
               "runs": runs, "seeds": per_seed,
               "test_error": summary([r["test_error"] for r in per_seed]),
               "val_error": (summary([r["val_error"] for r in per_seed])
                             if all(r["val_error"] is not None for r in per_seed) else None),
               "member_test_error": [summary([r["members"][i]["test_error"] for r in per_seed])
                                     for i in range(len(runs))]}
    text = markdown(results, "python -m experiments.ensemble " + " ".join(sys.argv[1:] if argv is None else argv))
    print(text, end="")
    write_outputs(((a.json, json.dumps(results, indent=1) + "\n"), (a.markdown, text)))
    mismatched = [f"{m['run']} seed {r['seed']}" for r in per_seed for m in r["members"] if m["matches_record"] is False]
    if mismatched:
        log("error: a member's test error differs from its recorded one: " + ", ".join(mismatched))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

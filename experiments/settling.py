"""How settled are the nudged phases?  ``python -m experiments.settling CHECKPOINT ...``.

EP's update is the contrast of the two nudged phases' traces (``learning.contrastive``); it
follows the gradient when both phases have reached their fixed points, and carries a bias
when ``t2`` steps leave them short.  For each checkpoint (its weights, hyper-parameters and
widths as trained), on the same training minibatches, this computes the contrastive weight
sums ``G`` at each ``--t2`` and at a long ``--reference-t2``, and reports per layer

* ``cosine``: the cosine between the sums at ``t2`` and at the reference (1 = the same
  direction; summed over the minibatches, then compared);
* ``norm_ratio``: ``|G(t2)| / |G(reference)|``.

No weight changes: the network's own update rule is never applied.  The minibatches are the
first ``--batches`` of the run's training split (its validation images held out, as the run
did: the checkpoint records the dataset and the split's size), in the run's minibatch size.

Output: a table on stdout, every figure with ``--json``; progress on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from .common import data_dir, fail, log, machine, write_outputs


def parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{what} must be comma-separated whole numbers, got {text!r}")
    if not values or min(values) < 1:
        fail(f"{what} must be whole numbers >= 1, got {text!r}")
    return values


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two integer arrays (float64); 0.0 when either is all zero."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na and nb else 0.0


def weight_sums(net, t2: int, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per layer 1..L, the contrastive weight sums ``G`` (int64) at ``t2`` nudged steps,
    summed over ``batches`` of ``(x_fp, labels)``; ``net`` is not changed."""
    from neurochip import learning
    from neurochip.backend import make_backend
    probe = dataclasses.replace(net.copy(), hyper=dataclasses.replace(net.hyper, t2=t2))
    backend = make_backend(probe)
    total = None
    for x, y in batches:
        res = backend.run(x, y, train=True)
        sums = [g for g, _ in learning.contrastive(probe, backend.layer_traces(res))]
        total = sums if total is None else [t + g for t, g in zip(total, sums)]
    return total


def norm_ratio(a: np.ndarray, ref: np.ndarray) -> float | None:
    """``|a| / |ref|`` (float64); None when ``ref`` is all zero."""
    n_ref = np.linalg.norm(ref.astype(np.float64))
    return float(np.linalg.norm(a.astype(np.float64)) / n_ref) if n_ref else None


def settling(net, t2s: list[int], reference_t2: int,
             batches: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """``{"reference_t2", "t2": {t2: {"cosine": [per layer], "norm_ratio": [per layer]}}}``."""
    ref = weight_sums(net, reference_t2, batches)
    out = {"reference_t2": reference_t2, "t2": {}}
    for t2 in t2s:
        g = weight_sums(net, t2, batches)
        ratios = [norm_ratio(a, r) for a, r in zip(g, ref)]
        out["t2"][t2] = {"cosine": [round(cosine(a, r), 6) for a, r in zip(g, ref)],
                         "norm_ratio": [None if v is None else round(v, 6) for v in ratios]}
    return out


def training_batches(net, dataset: str, root: str | None, train_samples: int | None,
                     val_split, n_batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n_batches`` minibatches (the run's size) of the run's training split: the
    first ``train_samples`` images less the validation images ``val_split`` (a count, a
    fraction or None) held out, carved as the command line carves them."""
    import neurochip as nc
    from neurochip.cli.validation import carve_validation
    ds = nc.load_dataset(dataset, data_dir(dataset, root)).subset(train_samples, None)
    rest, _, _ = carve_validation(ds, val_split, net.seed)
    b = net.hyper.batch_size
    if n_batches * b > len(rest.train_y):
        fail(f"--batches {n_batches} x {b} exceeds the {len(rest.train_y)} training images")
    x = rest.quantised(rest.train_x[:n_batches * b], net.widths.state_bits)
    y = rest.train_y[:n_batches * b]
    return [(x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]) for i in range(n_batches)]


def markdown(results: dict, command: str) -> str:
    lines = [f"Command: `{command}`  ", f"Machine: {results['machine']}; date {results['date']}.", "",
             "| checkpoint | epsilon | trained t2 | t2 | cosine with the reference, per layer | "
             "norm ratio, per layer |", "|---|---|---|---|---|---|"]
    for ck, r in results["checkpoints"].items():
        for t2, row in r["t2"].items():
            lines.append(f"| `{ck}` | {r['epsilon']:g} | {r['trained_t2']} | {t2} (ref {r['reference_t2']}) | "
                         f"{' / '.join(f'{c:.3f}' for c in row['cosine'])} | "
                         f"{' / '.join('-' if n is None else f'{n:.3f}' for n in row['norm_ratio'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.settling", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Example: python -m experiments.settling "
                                       "experiments/state/fmnist-c64k5-c128k3-drop0.1/seed0.npz "
                                       "--t2 10,20 --reference-t2 80")
    p.add_argument("checkpoints", nargs="+", help="checkpoints (.npz) of runs")
    p.add_argument("--which", choices=("last", "best"), default="last",
                   help="the latest weights (default) or the best-on-validation ones")
    p.add_argument("--dataset", help="digits, mnist or fashion-mnist (default: the checkpoint's)")
    p.add_argument("--data-root", help="folder holding mnist/ and fashion-mnist/ (default ../shared/data)")
    p.add_argument("--val-split",
                   help="images the run held out for validation, a count or a fraction "
                        "(default: the checkpoint's; 0: none)")
    p.add_argument("--batches", type=int, default=50,
                   help="training minibatches (default 50; a minibatch the network already fits "
                        "well can give all-zero sums, so a few are not enough)")
    p.add_argument("--t2", default="10,20,40", help="nudged-phase lengths to compare (default 10,20,40)")
    p.add_argument("--reference-t2", type=int, default=80, help="the long nudged phase (default 80)")
    p.add_argument("--threads", type=int, default=0, help="Numba threads (default: Numba's)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--markdown", help="write the table here too")
    a = p.parse_args(argv)
    import neurochip as nc
    from neurochip.errors import UserError
    from neurochip.validation_split import parse_split
    t2s = parse_ints(a.t2, "--t2")
    if a.reference_t2 < 1 or a.batches < 1:
        fail("--reference-t2 and --batches must be >= 1")
    if a.threads:
        import numba
        numba.set_num_threads(a.threads)
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
               "batches": a.batches, "which": a.which, "checkpoints": {}}
    for ck in a.checkpoints:
        try:
            net, training = nc.load_checkpoint(ck, which=a.which)
            dataset = a.dataset or (training or {}).get("dataset")
            if a.val_split is None:
                val_split = (training or {}).get("val_split")
            else:
                val_split = None if a.val_split.strip() == "0" else parse_split(a.val_split)
            if dataset is None:
                fail(f"{ck}: the checkpoint does not record its dataset; name it with --dataset")
            batches = training_batches(net, dataset, a.data_root, (training or {}).get("train_samples"),
                                       val_split, a.batches)
        except (UserError, OSError) as e:
            fail(f"{ck}: {e}")
        if batches[0][0][0].size != int(np.prod(net.arch.input_shape)):
            fail(f"{ck}: its network takes {net.arch.input_shape}, {dataset} has {batches[0][0].shape[1:]}")
        t0 = time.perf_counter()
        r = settling(net, t2s, a.reference_t2, batches)
        log(f"{ck}: {time.perf_counter() - t0:.0f} s")
        results["checkpoints"][ck] = {"dataset": dataset, "val_split": val_split,
                                      "epsilon": net.hyper.epsilon, "trained_t2": net.hyper.t2,
                                      "updates": net.updates, **r}
    text = markdown(results, "python -m experiments.settling " + " ".join(sys.argv[1:] if argv is None else argv))
    print(text, end="")
    write_outputs(((a.json, json.dumps(results, indent=1) + "\n"), (a.markdown, text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy against weight bit width: ``python -m experiments.bits``.

Trains the same preset, data and seed at every ``--bits`` value with the
integer core and prints a Markdown table (test error, train error, saturations,
run time).  With ``--real`` the real-valued spiking EP reference
(:mod:`reference.real`) is trained on the same data as the last row.
"""
from __future__ import annotations

import argparse
import sys

from .common import base_args, data_dir, machine, run_cli, write_json


def real_row(a) -> dict:
    """The real-valued spiking EP reference (float64, no quantisation), same data and order."""
    import time
    import torch
    from neurochip.data import load_dataset
    from neurochip.network import Network, get_preset
    from reference.real import RealModel, evaluate, train_epoch
    t0 = time.perf_counter()
    p = get_preset(a.preset)
    net = Network.create(p.arch, p.hyper, p.widths, seed=a.seed, preset=a.preset)
    ds = load_dataset(a.dataset, data_dir(a.dataset, a.data_root)).subset(a.train_samples,
                                                                          a.test_samples)
    model = RealModel.from_network(net, spiking=True, weights="float")
    x_tr = model.inputs(ds.train_x, scale=ds.pixel_max)
    x_te = model.inputs(ds.test_x, scale=ds.pixel_max)
    err = float("nan")
    with torch.no_grad():
        for epoch in range(a.epochs):
            err, _ = train_epoch(model, x_tr, ds.train_y, epoch, seed=a.seed)
        test_err, _ = evaluate(model, x_te, ds.test_y)
    return {"test_error": test_err, "train_error": err, "saturations": "-",
            "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bits", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="mnist-small")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and fashion-mnist/")
    p.add_argument("--bits", default="4,6,8,10,12,16")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", default="", help="further neurochip.run flags, quoted")
    p.add_argument("--real", action="store_true", help="add the real-valued reference row")
    p.add_argument("--out", default=None, help="write all results as JSON")
    a = p.parse_args(argv)
    base = base_args(a) + a.extra.split()
    rows = []
    for b in (int(v) for v in a.bits.split(",") if v.strip()):
        r = run_cli(base + ["--bits", str(b)])
        rows.append({"bits": b, **{k: r[k] for k in ("test_error", "train_error", "saturations",
                                                     "seconds", "updates", "weights_sha256")}})
        print(f"bits {b}: test {r['test_error']:.2%} train {r['train_error']:.2%} "
              f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
    if a.real:
        rows.append({"bits": "real", **real_row(a)})
    print(f"| bits | test error | train error | saturations | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['bits']} | {r['test_error']:.2%} | {r['train_error']:.2%} | "
              f"{r.get('saturations', '-')} | {r['seconds']:.0f} |")
    print(f"\nmachine: {machine()}; command: python -m experiments.bits "
          + " ".join(argv if argv is not None else sys.argv[1:]))
    write_json(a.out, {"rows": rows, "args": vars(a), "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sweep the weight width: the same network and data at several bit widths.

    python examples/sweep_bits.py                     # digits, 4/6/8/12 bits, 3 epochs
    python examples/sweep_bits.py --bits 6,8 --epochs 1 --train-samples 300

Each width is its own run from the same seed; the test split is used only for
the final figure (nothing is chosen on it).
"""
from __future__ import annotations

import argparse

import neurochip as nc


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="4,6,8,12", help="comma-separated weight widths")
    p.add_argument("--preset", default="digits")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--t1", type=int, default=None, help="free-phase steps (default: the preset's)")
    p.add_argument("--t2", type=int, default=None, help="nudged-phase steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    preset = nc.get_preset(a.preset)
    data = nc.load_dataset(preset.dataset).subset(a.train_samples, a.test_samples)
    steps = {k: v for k, v in (("t1", a.t1), ("t2", a.t2)) if v is not None}
    rows = []
    print(f"{'bits':>4}  {'test error':>10}  {'saturations':>11}  weights sha256")
    for bits in (int(b) for b in a.bits.split(",")):
        net = nc.Network.from_preset(a.preset, bits=bits, seed=a.seed, **steps)
        run = nc.train(net, data, epochs=a.epochs)
        result = nc.evaluate(net, data)
        rows.append({"bits": bits, "test_error": result.error,
                     "saturations": run.tally.total_saturations(), "sha256": net.weights_sha256()})
        print(f"{bits:>4}  {result.error:>10.2%}  {rows[-1]['saturations']:>11}  {rows[-1]['sha256'][:16]}")
    return rows


if __name__ == "__main__":
    main()

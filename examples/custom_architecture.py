"""A custom architecture on your own arrays: 12x12 images of bars, horizontal or vertical.

    python examples/custom_architecture.py
    python examples/custom_architecture.py --epochs 2 --samples 200

The data are made here with NumPy (any integer images and labels work the same
way); a validation split carved from the training images drives early
stopping; the test images are scored once at the end.
"""
from __future__ import annotations

import argparse

import numpy as np

import neurochip as nc


def bars(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (n, 1, 12, 12): label 0 = a horizontal bar, 1 = a vertical one, plus noise."""
    x = (rng.random((n, 1, 12, 12)) < 0.08).astype(np.uint8) * 80
    y = rng.integers(0, 2, n)
    pos = rng.integers(1, 11, n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], 1:11] = 255
        else:
            x[i, 0, 1:11, pos[i]] = 255
    return x, y


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="1x12x12:c8k3p1-f2", help="architecture string (1x12x12 input, 2 outputs)")
    p.add_argument("--samples", type=int, default=600, help="training images (a sixth is validation)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--t1", type=int, default=30)
    p.add_argument("--t2", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    rng = np.random.default_rng(a.seed)
    x, y = bars(a.samples, rng)
    n_val = a.samples // 6
    test_x, test_y = bars(200, rng)
    data = nc.Dataset.from_arrays(x[n_val:], y[n_val:], test_x, test_y, name="bars")
    validation = (x[:n_val], y[:n_val])

    arch = nc.Architecture.parse(a.arch)
    lrs = tuple([0.2] * (arch.n_layers - 1) + [0.05])      # hidden layers, readout
    hyper = nc.Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5, t1=a.t1, t2=a.t2,
                     lrs=lrs, batch_size=10)
    net = nc.Network.create(arch, hyper, nc.Widths(weight_bits=8), seed=a.seed)
    run = nc.train(net, data, epochs=a.epochs, evaluate_on=validation,
                   callbacks=[nc.PrintProgress(), nc.EarlyStopping("val_error", patience=2)])
    test = nc.evaluate(net, data)
    print(f"{net.arch}: validation error {run.history[-1]['val_error']:.2%} after "
          f"{len(run.history)} epochs, test error {test.error:.2%}")
    return {"history": run.history, "test_error": test.error, "sha256": net.weights_sha256()}


if __name__ == "__main__":
    main()

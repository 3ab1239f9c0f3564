"""reference.backend: the torch backend gives the core's integers through the trainer."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurochip.network import Network, get_preset
from neurochip.trainer import make_backend, train_step
from tests.helpers import digits_inputs as _digits


def test_numba_and_torch_backends_identical():
    pytest.importorskip("torch")
    p = get_preset("digits-2c")
    hyper = dataclasses.replace(p.hyper, batch_size=8, t1=20, t2=6)
    a = Network.create(p.arch, hyper, p.widths, seed=2)
    b = a.copy()
    ba, bb = make_backend(a), make_backend(b, "torch", device="cpu")
    x, y = _digits(16)
    for i in range(2):
        xs, ys = x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
        ra, rb = ba.run(xs, ys), bb.run(xs, ys)
        for f in ("traces", "pool_idx", "s_free", "predictions", "counts"):
            assert np.array_equal(getattr(ra, f), getattr(rb, f)), f
        train_step(ba, a, xs, ys)
        train_step(bb, b, xs, ys)
        assert a.weights_sha256() == b.weights_sha256()

"""Oracle: a minibatch update at the default widths against the real-valued EP step.

For the digits presets (8-bit weights, ``S = 12``, 8-bit traces, the presets' own
hyper-parameters and batch of 20) and a paper-like hyper-parameter set whose
``beta`` is not a Q12 value, the core's traces must be its end-of-phase states
latched (``trace = floor(s tmax / ONE + 1/2)``, exactly) and its weight and bias changes the
stochastic rounding of ``lr c G / (2 beta B)`` computed by the real model from those
traces (``reference.real.RealModel.dphi``; ``c = 1/4`` for avg-pool conv layers):
elementwise within ``1 + |D| rel`` and unbiased over the whole update
(:func:`tests.oracle._drive.check_update` derives both bounds).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurochip.data import load_digits
from neurochip.network import PRESETS, Network
from neurochip.backend import NumbaBackend
from reference.real import RealModel

from ._drive import _int_state, _shapes, check_update

CASES = [("digits", "avg", {}), ("digits", "max", {}), ("digits-2c", "avg", {}),
         ("digits-2c", "max", {}), ("digits-fc", "avg", {}),
         ("digits-2c", "avg", dict(beta=0.9, epsilon=0.1, lam=0.6, alpha=0.6, t1=60, t2=15)),
         ("digits", "avg", dict(update_scale="alpha"))]


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("preset,pool,over", CASES,
                         ids=[f"{p}-{q}-{i}" for i, (p, q, _) in enumerate(CASES)])
def test_update_at_default_widths(digits, preset, pool, over):
    p = PRESETS[preset]
    h = dataclasses.replace(p.hyper, pool=pool, **over)
    net = Network.create(p.arch, h, p.widths, seed=7)
    one, tmax = 2 ** net.widths.state_bits, 2 ** net.widths.trace_bits - 1
    bsz = h.batch_size
    x_fp = digits.quantised(digits.train_x[:bsz], net.widths.state_bits)
    labels = digits.train_y[:bsz].astype(np.int64)
    backend = NumbaBackend(net)
    res = backend.run(x_fp, labels, train=True, record=True)
    traces = backend.layer_traces(res)
    shapes = _shapes(net)
    for phase, pick in ((1, "plus"), (2, "minus")):
        st = _int_state(backend.core, shapes, res.rec_state[:, phase])
        for l, t in enumerate(traces):
            s_int = st.s[l] if l > 0 else x_fp.reshape(t.plus.shape)
            # round(s tmax / ONE), ties up: s tmax / ONE is dyadic, exact in float64
            want = np.floor(s_int * tmax / one + 0.5)
            assert np.array_equal(getattr(t, pick), want), f"layer {l} {pick} traces"
    check_update(net, RealModel.from_network(net), traces)

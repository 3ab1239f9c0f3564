"""Oracle: the 24-bit registers saturate where docs/numerics.md §2 puts their rails.

With weights read at exponent 0 or 1 (each one worth a whole state unit or half of
it) the aligned input ``in`` and the decoder ``dec`` of the hidden layers run into
the rails.  Every step is again one real-valued step from the core's integer state
(:mod:`reference.real`), now followed by the register's clamp to
``[-2**23, 2**23 - 1]`` written here from the register width, with the one-step
rounding bounds of ``test_stepwise.py`` (a clamp is 1-Lipschitz, so a rounding
bound survives it): ``in = clamp(U)``, ``dec' = clamp(dec + lam (in - dec))``,
``s' = clamp01(s + eps (dec' + b + nudge - s))``.  The real ``U`` is read back from
the real model's unclamped decoder, ``U = (dec_r' - (1 - lam) dec) / lam``.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.data import load_digits
from neurochip.network import Hyper, Network, Widths
from reference.real import RealModel, onehot

from ._drive import PHASE_FREE, PHASE_MINUS, PHASE_PLUS, real_state, record_every_step

REG_BITS = 24                                  # docs §2: in, dec and psi are 24-bit signed
REG_LO, REG_HI = -2 ** (REG_BITS - 1), 2 ** (REG_BITS - 1) - 1
SLACK = 1e-6
BATCH = 3


def _check(model, net, prev, prev_spk, now, x_fp, y, beta, where):
    h = model.hyper
    one = 2 ** net.widths.state_bits
    L = net.arch.n_layers
    st = real_state(model, prev, x_fp, prev_spk, one)
    new = model.step(st, y, beta)
    e_dec = 0.5 + h.lam / 2
    reached = 0
    for l in range(1, L + 1):
        dec0 = st.dec[l].numpy() * one
        u = (new.dec[l].numpy() * one - (1 - h.lam) * dec0) / h.lam
        inp = np.clip(u, REG_LO, REG_HI)
        dec = np.clip(dec0 + h.lam * (inp - dec0), REG_LO, REG_HI)
        err = np.abs(dec - now.dec[l]).max()
        assert err <= e_dec + SLACK, f"{where}, layer {l}: dec off by {err:.3f} LSB"
        reached += int((np.abs(u) > REG_HI).sum())
        s0 = st.s[l].numpy() * one
        drive = dec + model.b[l - 1].numpy().reshape((1, -1) + (1,) * (s0.ndim - 2)) * one
        nudged = l == L and beta != 0.0
        if nudged:
            drive = drive + beta * (y.numpy() * one - s0)
        s = np.clip(s0 + h.epsilon * (drive - s0), 0, one)
        e_s = 0.5 + h.epsilon * (e_dec + (0.5 if nudged else 0.0))
        err = np.abs(s - now.s[l]).max()
        assert err <= e_s + SLACK, f"{where}, layer {l}: s off by {err:.3f} LSB"
    return reached


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_registers_saturate_at_their_rails(pool):
    ds = load_digits()
    h = Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5, t1=12, t2=4,
              lrs=(0.1, 0.1, 0.1), batch_size=BATCH, pool=pool)
    net = Network.create("1x8x8:c4k3p1-f12-f10", h, Widths(8, 16, 8, 24), seed=3)
    net.weight_exp = [0, 0, 1]
    x_fp = ds.quantised(ds.train_x[:BATCH], 16)
    labels = ds.train_y[:BATCH].astype(np.int64)
    rec = record_every_step(net, x_fp, labels)
    assert rec.saturations > 0
    model = RealModel.from_network(net)
    y = onehot(labels, 10)
    reached = 0
    for k in range(1, h.t1 + 1):
        reached += _check(model, net, rec.free.get(k - 1), rec.spikes[PHASE_FREE].get(k - 1),
                          rec.free[k], x_fp, y, 0.0, f"free step {k}")
    for phase, states, beta in ((PHASE_PLUS, rec.plus, h.beta), (PHASE_MINUS, rec.minus, -h.beta)):
        for k in range(1, h.t2 + 1):
            prev = rec.free[h.t1] if k == 1 else states[k - 1]
            reached += _check(model, net, prev, rec.spikes[phase][k - 1], states[k], x_fp, y,
                              beta, f"phase {phase} step {k}")
    assert reached > 0, "no input beyond the register: the clamp was not exercised"

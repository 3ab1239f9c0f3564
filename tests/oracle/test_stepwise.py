"""Oracle: every integer step of the core against one real-valued step.

The real-valued model (:mod:`reference.real`, its own constants, no rule of
``neurochip.numerics``) is started, at every step ``k`` of every phase, from the
core's complete integer state after step ``k-1`` read as reals, with the spikes the
core emitted at ``k-1`` in flight, and run for one step.  Its result must match the
core's state after step ``k`` to a rounding bound derived below, register by
register (``s``, ``dec``, ``psi``, ``enc_prev``), layer by layer; the core's spikes
must be the real encoder's decisions wherever the real potential is further than
the bound from the threshold.  Then the core's traces must be the latched states,
and its weight update the real EP step on those traces (elementwise, and unbiased
over the whole update).

Bounds, in LSB of the state (``2**-S``), for one step from an exactly known state
with Q12-exact hyper-parameters (every value used here is a multiple of 1/8) and no
register saturation (asserted: the core counts every saturation).  Let ``U`` be the
real input ``u * ONE``:

* ``in``: one final rounding of an exact sum (docs §3 alignment): ``|in - U| <= 1/2``;
* ``dec' = dec + round(lam (in - dec))``: ``e_dec = 1/2 + lam/2``
  (this holds ``u`` as well: ``in`` is pinned to within ``e_dec/lam`` by ``dec'``);
* the nudge ``round(beta (y - s))``: ``1/2`` (output layer, nudged phases);
* ``s' = clamp(s + round(eps (drive - s)))``, the clamp 1-Lipschitz:
  ``e_s = 1/2 + eps (e_dec + e_nudge)``; ``enc_prev' = s'``: ``e_s``;
* encoder ``v = psi + a - round((1 - lam) a_prev)`` against ``lam phi + a - (1-lam) a_prev``:
  ``e_v = e_s + 1/2`` (input layer: ``a`` exact, ``1/2``); ``psi' = v - q lam ONE``.

Float64 evaluation adds at most ~1e-9 LSB (sums of a few hundred dyadic values), the
``SLACK`` below.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurochip.data import load_digits
from neurochip.network import Hyper, Network, Widths
from reference.real import RealModel, onehot

from ._drive import (PHASE_FREE, PHASE_MINUS, PHASE_PLUS, check_update, real_state,
                     record_every_step)

SLACK = 1e-6
BATCH = 3

# Q12-exact hyper-parameters; lam != eps and alpha != 1 so that swapping two of
# them, or dropping alpha, changes the integers
HYPERS = {
    "half": dict(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5),
    "mixed": dict(beta=0.75, epsilon=0.75, lam=0.25, alpha=0.25, theta=0.375),
}

CASES = [  # (arch, pool, hyper, widths (Bw, S, Bt, Bb), t1, t2, lrs)
    ("1x8x8:c3k3p1-c4k3p1-f10", "avg", "mixed", (8, 12, 8, 16), 14, 5, (0.2, 0.3, 0.1)),
    ("1x8x8:c3k3p1-c4k3p1-f10", "max", "half", (8, 12, 8, 16), 14, 5, (0.2, 0.3, 0.1)),
    ("1x8x8:c4k3p1-f10", "avg", "half", (8, 12, 8, 16), 12, 5, (0.4, 0.1)),
    ("1x8x8:c4k2p1-f16-f10", "max", "mixed", (10, 13, 9, 18), 16, 8, (0.3, 0.2, 0.1)),
    ("1x8x8:f12-f8-f10", "avg", "mixed", (16, 16, 16, 24), 12, 8, (0.2, 0.2, 0.1)),
]


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds, ds.train_y[:BATCH].astype(np.int64)


def _net(case) -> Network:
    arch, pool, hyp, (bw, s, bt, bb), t1, t2, lrs = case
    h = Hyper(**HYPERS[hyp], t1=t1, t2=t2, lrs=lrs, batch_size=BATCH, pool=pool)
    return Network.create(arch, h, Widths(bw, s, bt, bb), seed=4)


def _bounds(h, output: bool, nudged: bool) -> dict:
    e_dec = 0.5 + h.lam / 2
    e_s = 0.5 + h.epsilon * (e_dec + (0.5 if output and nudged else 0.0))
    return dict(dec=e_dec + SLACK, s=e_s + SLACK, v=e_s + 0.5 + SLACK)


def _check_step(model, net, prev_int, prev_spk, now_int, now_spk, x_fp, y, beta, where):
    """One real step from ``prev`` against the core's ``now``; returns near-tie count."""
    h = model.hyper
    one = 2 ** net.widths.state_bits
    L = net.arch.n_layers
    st = real_state(model, prev_int, x_fp, prev_spk, one)
    new = model.step(st, y, beta)
    lam_one = h.lam * one
    ties = 0
    for l in range(L + 1):
        b = _bounds(h, l == L, beta != 0.0)
        tag = f"{where}, layer {l}"
        if l > 0:
            for name, real, core in (("s", new.s[l], now_int.s[l]), ("dec", new.dec[l], now_int.dec[l])):
                err = np.abs(real.numpy() * one - core).max()
                assert err <= b[name], f"{tag}: {name} off by {err:.3f} LSB > {b[name]:.3f}"
        e_a = b["s"] if l > 0 else SLACK        # the encoder's input: s' (input layer: x, exact)
        err = np.abs(new.prev[l].numpy() * one - now_int.enc_prev[l]).max()
        assert err <= e_a, f"{tag}: enc_prev off by {err:.3f} LSB"
        # the real potential psi-scaled: lam ONE (phi' + q_real) = psi + a - (1-lam) a_prev
        v_real = (new.phi[l] + new.spk[l]).numpy() * lam_one
        e_v = e_a + 0.5 + SLACK
        q_core = now_spk[l]
        thr = h.lam * h.theta * one
        differ = new.spk[l].numpy().astype(np.int64) != q_core
        far = np.abs(v_real - thr) > e_v
        assert not np.any(differ & far), (
            f"{tag}: {int((differ & far).sum())} spikes differ from the real encoder "
            f"far from the threshold (margin > {e_v:.3f} LSB)")
        ties += int(differ.sum())
        psi_real = v_real - q_core * lam_one
        err = np.abs(psi_real - now_int.psi[l]).max()
        assert err <= e_v, f"{tag}: psi off by {err:.3f} LSB > {e_v:.3f}"
    _check_step_exact(model, st, new, now_int, now_spk, y, beta, one, where)
    return ties


def rnd(x):
    """The contract's rounding, ``floor(x + 1/2)`` (ties toward +inf), on exact dyadic floats."""
    return np.floor(x + 0.5)


def _check_step_exact(model, st, new, now_int, now_spk, y, beta, one, where):
    """The same step with the contract's roundings (docs §5) applied to the real values.

    With Q12-exact constants every quantity here is a dyadic rational that float64
    holds exactly (weights of <= 16 bits, a few hundred terms), so the documented
    integers can be computed exactly from the real step: ``U`` (the summed input in
    LSB) is read back from the real decoder, ``U = (dec_r' - (1 - lam) dec) / lam``.
    Equality, not a bound: this pins the tie direction and every shift.
    """
    h = model.hyper
    L = len(st.s) - 1
    f = lambda t: t.numpy() * one                                    # noqa: E731
    for l in range(L + 1):
        tag = f"{where}, layer {l} (exact)"
        if l > 0:
            dec0, s0 = f(st.dec[l]), f(st.s[l])
            u = (f(new.dec[l]) - (1 - h.lam) * dec0) / h.lam
            inp = rnd(u)
            dec = dec0 + rnd(h.lam * (inp - dec0))
            drive = dec + f(model.b[l - 1]).reshape((1, -1) + (1,) * (s0.ndim - 2))
            if l == L and beta != 0.0:
                drive = drive + rnd(beta * (f(y) - s0))
            a = np.clip(s0 + rnd(h.epsilon * (drive - s0)), 0, one)
            assert np.array_equal(dec, now_int.dec[l]), f"{tag}: dec"
            assert np.array_equal(a, now_int.s[l]), f"{tag}: s"
        else:
            a = f(st.s[0])
        v = f(st.phi[l]) * h.lam + a - rnd((1 - h.lam) * f(st.prev[l]))
        q = v > rnd(h.lam * h.theta * one)
        assert np.array_equal(q, now_spk[l].astype(bool)), f"{tag}: spikes"
        assert np.array_equal(v - q * rnd(h.lam * one), now_int.psi[l]), f"{tag}: psi"
        assert np.array_equal(a, now_int.enc_prev[l]), f"{tag}: enc_prev"


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3][1]}" for c in CASES])
def test_every_step_and_the_update_against_real_steps(digits, case):
    ds, y_lab = digits
    net = _net(case)
    h, one = net.hyper, 2 ** net.widths.state_bits
    x_fp = ds.quantised(ds.train_x[:BATCH], net.widths.state_bits)
    rec = record_every_step(net, x_fp, y_lab)
    assert rec.saturations == 0                  # the bounds assume no saturated register
    model = RealModel.from_network(net)
    y = onehot(y_lab, net.arch.num_classes)
    spikes = np.zeros(net.arch.n_layers + 1, np.int64)
    for k in range(1, h.t1 + 1):
        prev = rec.free.get(k - 1)
        prev_spk = rec.spikes[PHASE_FREE].get(k - 1, None)
        _check_step(model, net, prev, prev_spk, rec.free[k], rec.spikes[PHASE_FREE][k],
                    x_fp, y, 0.0, f"free step {k}")
        spikes += [int(q.sum()) for q in rec.spikes[PHASE_FREE][k]]
    for phase, states, beta in ((PHASE_PLUS, rec.plus, h.beta), (PHASE_MINUS, rec.minus, -h.beta)):
        for k in range(1, h.t2 + 1):
            prev = rec.free[h.t1] if k == 1 else states[k - 1]
            _check_step(model, net, prev, rec.spikes[phase][k - 1], states[k],
                        rec.spikes[phase][k], x_fp, y, beta, f"phase {phase} step {k}")
            spikes += [int(q.sum()) for q in rec.spikes[phase][k]]
    # not vacuous: every layer spiked, the output moved in both nudged phases
    assert np.all(spikes > 0), f"spikes per layer {spikes}"
    assert not np.array_equal(rec.plus[h.t2].s[-1], rec.minus[h.t2].s[-1])

    # traces: the latch of the phase's last state, round(s tmax / ONE) ties up (exact)
    tmax = 2 ** net.widths.trace_bits - 1
    traces = rec.backend.layer_traces(rec.result)
    for l, t in enumerate(traces):
        for tr, st in ((t.plus, rec.plus[h.t2]), (t.minus, rec.minus[h.t2])):
            s_int = st.s[l] if l > 0 else x_fp.reshape(tr.shape)
            assert np.array_equal(tr, rnd(s_int * tmax / one)), f"layer {l}: traces"

    # the update: the core's delta is a stochastic rounding of the real EP step D
    check_update(net, model, traces)

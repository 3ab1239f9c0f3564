"""Oracle: whole short runs of the core against the real-valued model at wide widths.

At 16-bit weights, ``S = 16`` and 16-bit traces the integer core and the real model
(:mod:`reference.real`, each started from the same parameters, each running its own
dynamics from step 0 and its own three-phase EP) must emit the same spikes at every
step of a short run, end every phase in the same states up to the accumulated
rounding derived below, count the same spikes, and make the same minibatch update
up to the traces' and the mantissa's rounding.

Accumulated bound (LSB of ``2**-S``) while the spike trains coincide: the summed
weights ``u`` are then identical, and each step adds the one-step roundings of
``tests/oracle/test_stepwise.py`` to the propagated errors (Q12-exact constants,
no saturation)::

    E_dec' = (1 - lam) E_dec + lam/2 + 1/2
    E_s'   = |1 - eps - eps beta_out| E_s + eps (E_dec' + 1/2 [nudged output]) + 1/2
    E_v'   = E_psi + E_s' + (1 - lam) E_prev + 1/2     (the encoder's potential)
    E_psi' = E_v' ;  E_prev' = E_s'                  (input layer: E_s = 0)

(the residue is not damped: its bound grows linearly, which is why trajectories
part after enough steps).  A spike may differ only where the real potential is
within ``E_v`` of the threshold; these runs are short enough that none does.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.core import K_SPIKES
from neurochip.data import load_digits
from neurochip.learning import contrastive, update_network
from neurochip.network import Hyper, Network, Widths
from neurochip.backend import NumbaBackend
from reference.real import RealModel

from ._drive import _int_state, _shapes

SLACK = 1e-6
BATCH = 4
WIDE = Widths(weight_bits=16, state_bits=16, trace_bits=16, bias_bits=24)
HYPERS = {
    "half": dict(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5),
    "mixed": dict(beta=0.75, epsilon=0.75, lam=0.25, alpha=0.25, theta=0.375),
}
CASES = [  # arch, pool, hyper, t1, t2, lrs
    ("1x8x8:c3k3p1-c4k3p1-f10", "avg", "half", 30, 10, (0.2, 0.3, 0.1)),
    ("1x8x8:c3k3p1-c4k3p1-f10", "max", "mixed", 16, 8, (0.2, 0.3, 0.1)),
    ("1x8x8:c4k3p1-f10", "max", "half", 24, 8, (0.2, 0.1)),
    ("1x8x8:f16-f10", "avg", "mixed", 24, 8, (0.2, 0.1)),
]


class Bounds:
    """The accumulated bounds above, per layer kind, advanced step by step."""

    def __init__(self, h, n_layers: int):
        self.h, self.L = h, n_layers
        z = np.zeros(n_layers + 1)
        self.dec, self.s, self.psi, self.prev, self.v = z.copy(), z.copy(), z.copy(), z.copy(), z.copy()

    def copy(self) -> "Bounds":
        b = Bounds(self.h, self.L)
        for k in ("dec", "s", "psi", "prev", "v"):
            setattr(b, k, getattr(self, k).copy())
        return b

    def step(self, beta: float) -> None:
        h = self.h
        for l in range(1, self.L + 1):
            self.dec[l] = (1 - h.lam) * self.dec[l] + h.lam / 2 + 0.5
            nudged = l == self.L and beta != 0.0
            damp = abs(1 - h.epsilon - (h.epsilon * beta if nudged else 0.0))
            self.s[l] = damp * self.s[l] + h.epsilon * (self.dec[l] + (0.5 if nudged else 0)) + 0.5
        for l in range(self.L + 1):
            self.v[l] = self.psi[l] + self.s[l] + (1 - h.lam) * self.prev[l] + 0.5
            self.psi[l], self.prev[l] = self.v[l], self.s[l]


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_short_runs_at_wide_widths(digits, case):
    arch, pool, hyp, t1, t2, lrs = case
    h = Hyper(**HYPERS[hyp], t1=t1, t2=t2, lrs=lrs, batch_size=BATCH, pool=pool)
    net = Network.create(arch, h, WIDE, seed=2)
    one, tmax, L = 2 ** WIDE.state_bits, 2 ** WIDE.trace_bits - 1, net.arch.n_layers
    ds = digits
    x_fp = ds.quantised(ds.train_x[:BATCH], WIDE.state_bits)
    labels = ds.train_y[:BATCH].astype(np.int64)

    backend = NumbaBackend(net)
    res = backend.run(x_fp, labels, train=True, record=True)
    core = backend.core
    shapes = _shapes(net)
    spikes_core = [[p.reshape((BATCH,) + shp) for p, shp in zip(core.layout.split(res.rec_spikes[:, k]), shapes)]
                   for k in range(t1 + 2 * t2)]

    model = RealModel.from_network(net)
    real_steps = []
    out = model.ep(model.inputs(x_fp, one), labels,
                   callback=lambda k, st: real_steps.append(st))
    assert len(real_steps) == t1 + 2 * t2

    # spikes, step by step, with the bound's growth (the -beta phase restarts from the snapshot)
    bounds = Bounds(h, L)
    snapshot = None
    thr = h.lam * h.theta * one
    ends = {}
    for k, st in enumerate(real_steps):
        phase = 0 if k < t1 else (1 if k < t1 + t2 else 2)
        if k == t1 + t2:
            bounds = snapshot.copy()
        bounds.step(0.0 if phase == 0 else (h.beta if phase == 1 else -h.beta))
        for l in range(L + 1):
            q_real = st.spk[l].numpy().astype(np.int64)
            differ = q_real != spikes_core[k][l]
            if differ.any():
                v_real = (st.phi[l] + st.spk[l]).numpy() * h.lam * one
                margin = np.abs(v_real - thr)[differ].min()
                why = ("a near tie: the trajectories legitimately part here; shorten the run"
                       if margin <= bounds.v[l] + SLACK else "far from the threshold: a wrong rule")
                raise AssertionError(f"step {k + 1}, layer {l}: {int(differ.sum())} spikes differ, "
                                     f"real potential {margin:.2f} LSB from the threshold "
                                     f"(bound {bounds.v[l]:.2f}): {why}")
        if k == t1 - 1:
            snapshot = bounds.copy()
        if k in (t1 - 1, t1 + t2 - 1, t1 + 2 * t2 - 1):
            ends[phase] = bounds.copy()

    # end-of-phase states and spike counts per layer
    for phase, real_st in ((0, out.free), (1, out.plus), (2, out.minus)):
        st_int = _int_state(core, shapes, res.rec_state[:, phase])
        b = ends[phase]
        for l in range(1, L + 1):
            for name, real, ints, bnd in (("s", real_st.s[l], st_int.s[l], b.s[l]),
                                          ("dec", real_st.dec[l], st_int.dec[l], b.dec[l]),
                                          ("psi", real_st.phi[l] * h.lam, st_int.psi[l], b.psi[l])):
                err = np.abs(real.numpy() * one - ints).max()
                assert err <= bnd + SLACK, f"phase {phase} layer {l} {name}: {err:.2f} > {bnd:.2f} LSB"
        lo = 0 if phase == 0 else (t1 if phase == 1 else t1 + t2)
        hi = t1 if phase == 0 else lo + t2
        for l in range(L + 1):
            n_real = sum(int(real_steps[k].spk[l].sum()) for k in range(lo, hi))
            assert int(res.counts[:, phase, l, K_SPIKES].sum()) == n_real, (phase, l)
            assert n_real > 0 or phase > 0, f"layer {l} silent in the free phase"
    assert not np.allclose(out.plus.s[-1], out.minus.s[-1])   # the nudge acted

    # the update against the real model's own EP step, -lr * grad
    old = [(w.astype(np.int64), b.astype(np.int64)) for w, b in zip(net.weights_q, net.biases_q)]
    stats = update_network(net, contrastive(net, backend.layer_traces(res)))
    assert stats.weight_saturations.sum() == 0 and stats.bias_saturations.sum() == 0
    k_lr = [lr / (2 * h.beta) for lr in lrs]
    delta_trace = lambda l: 0.5 / tmax + max(ends[1].s[l], ends[2].s[l]) / one   # noqa: E731
    checked_big = 0
    for l, ((gw, gb), spec) in enumerate(zip(out.grads, net.arch.layers)):
        e = net.weight_exp[l]
        d_w = -lrs[l] * gw.numpy() * 2.0 ** e
        d_b = -lrs[l] * gb.numpy() * one
        dlt = max(delta_trace(l), delta_trace(l + 1))
        if spec.kind == "conv":
            _, hc, wc = net.arch.conv_shape(l)
            _, hp, wp = net.arch.state_shapes()[l]
            c, n_pos = (0.25, hc * wc) if pool == "avg" else (1.0, hp * wp)
            n_pos_b = hp * wp
        else:
            c, n_pos, n_pos_b = 1.0, 1, 1
        # each trace product differs from the state product by <= 2 dlt; 2 phases, mean over B
        tw = k_lr[l] * c * 2.0 ** e * 2 * n_pos * 2 * dlt
        tb = k_lr[l] * one * 2 * n_pos_b * delta_trace(l + 1)
        for what, new, old_v, d, t in (("weights", net.weights_q[l], old[l][0], d_w, tw),
                                       ("biases", net.biases_q[l], old[l][1], d_b, tb)):
            delta = new.astype(np.int64) - old_v
            bound = 1.0 + np.abs(d) * 2.0 ** -15 + t + SLACK
            err = np.abs(delta - d)
            assert np.all(err < bound), (f"layer {l + 1} {what}: worst error {err.max():.3f}, "
                                         f"bound {bound.max():.3f}")
            checked_big += int((np.abs(d) > 4 * bound).sum())
    assert checked_big > 20, "too few updates well above the bound: the check would be weak"

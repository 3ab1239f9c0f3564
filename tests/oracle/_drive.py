"""Helpers of the oracle tests: the core's state after every step, the real model's
state built from integers, and the real-valued update of recorded traces.

Nothing here computes an integer rule: the core's integers are read through its
public run record, and the real side is :mod:`reference.real` (which derives its
own constants from the hyper-parameters and imports no rule of ``neurochip``).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from neurochip.core import REC_DEC, REC_ENC_PREV, REC_PSI, REC_S, CoreNet
from neurochip.learning import contrastive, update_network
from neurochip.network import Network
from neurochip.backend import NumbaBackend
from reference.real import RealModel, State

PHASE_FREE, PHASE_PLUS, PHASE_MINUS = 0, 1, 2


@dataclasses.dataclass
class IntState:
    """The core's registers after one step, per layer 0..L, canonical (B, *shape) int64."""

    s: list
    dec: list
    psi: list
    enc_prev: list


@dataclasses.dataclass
class Recording:
    """``free[k]``/``plus[k]``/``minus[k]``: :class:`IntState` after step ``k`` of that
    phase (``k = 1..T``); ``spikes[phase][k]``: per layer the spikes emitted at step
    ``k`` (``k = 0`` of a nudged phase: the free phase's last, in flight at the
    snapshot); ``result``: the run with the full ``t1``, ``t2`` (traces, argmax);
    ``saturations``: every saturation counted over all these runs."""

    free: dict
    plus: dict
    minus: dict
    spikes: dict
    result: object
    backend: NumbaBackend
    saturations: int


def _shapes(net: Network) -> list[tuple]:
    return [tuple(net.arch.input_shape)] + [tuple(s) for s in net.arch.state_shapes()]


def _int_state(core: CoreNet, shapes, rec_state_phase: np.ndarray) -> IntState:
    """``rec_state[:, phase]`` ``(B, 4, n_all)`` -> :class:`IntState`."""
    bsz = rec_state_phase.shape[0]
    def part(kind):
        return [p.reshape((bsz,) + shp) for p, shp in
                zip(core.layout.split(rec_state_phase[:, kind]), shapes)]
    return IntState(part(REC_S), part(REC_DEC), part(REC_PSI), part(REC_ENC_PREV))


def _spikes(core: CoreNet, shapes, rec_spikes: np.ndarray, step: int) -> list:
    """Per layer, the spikes of step ``step`` (1-based) of a recorded run."""
    bsz = rec_spikes.shape[0]
    return [p.reshape((bsz,) + shp).astype(np.int64) for p, shp in
            zip(core.layout.split(rec_spikes[:, step - 1]), shapes)]


def record_every_step(net: Network, x_fp: np.ndarray, labels: np.ndarray) -> Recording:
    """The core's state after every step of every phase.

    The core records the complete state only at the end of a phase; a run is a pure
    function of ``(net, x, labels, t1, t2)`` whose first ``k`` steps do not depend on
    the phase lengths, so the run with ``t1 = k`` (or ``t2 = k``) ends on the state
    after step ``k`` of the longer run.
    """
    from neurochip.core import K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI
    h = net.hyper
    shapes = _shapes(net)
    free, plus, minus = {}, {}, {}
    spikes = {PHASE_FREE: {}, PHASE_PLUS: {}, PHASE_MINUS: {}}
    sats = 0

    def run(t1, t2, train):
        nonlocal sats
        n = dataclasses.replace(net, hyper=dataclasses.replace(h, t1=t1, t2=t2))
        core = CoreNet(n)
        res = core.run(x_fp, labels, train=train, record=True)
        sats += int(res.counts[..., [K_SAT_INPUT, K_SAT_DEC, K_SAT_PSI]].sum())
        return core, res

    for k in range(1, h.t1 + 1):
        core, res = run(k, h.t2, False)
        free[k] = _int_state(core, shapes, res.rec_state[:, PHASE_FREE])
    for k in range(1, h.t1 + 1):
        spikes[PHASE_FREE][k] = _spikes(core, shapes, res.rec_spikes, k)
    for k in range(1, h.t2 + 1):
        core, res = run(h.t1, k, True)
        plus[k] = _int_state(core, shapes, res.rec_state[:, PHASE_PLUS])
        minus[k] = _int_state(core, shapes, res.rec_state[:, PHASE_MINUS])
    spikes[PHASE_PLUS][0] = spikes[PHASE_MINUS][0] = spikes[PHASE_FREE][h.t1]
    for k in range(1, h.t2 + 1):
        spikes[PHASE_PLUS][k] = _spikes(core, shapes, res.rec_spikes, h.t1 + k)
        spikes[PHASE_MINUS][k] = _spikes(core, shapes, res.rec_spikes, h.t1 + h.t2 + k)
    backend = NumbaBackend(net)
    return Recording(free, plus, minus, spikes, res, backend, sats)


def real_state(model: RealModel, st: IntState | None, x_fp: np.ndarray, spikes: list | None,
               one: int) -> State:
    """The real model's :class:`State` holding the integers of ``st`` read as reals.

    ``st is None``: the state before the first step (zeros, input clamped, nothing
    in flight).  ``psi = lam * phi`` (docs/numerics.md §5), so ``phi = psi / (lam ONE)``.
    """
    lam = model.hyper.lam
    x = model.inputs(x_fp, one)
    base = model.init_state(x)
    if st is None:
        return base
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=model.dtype)   # noqa: E731
    s = [x] + [t(v) / one for v in st.s[1:]]
    dec = [None] + [t(v) / one for v in st.dec[1:]]
    phi = [t(v) / (lam * one) for v in st.psi]
    prev = [t(v) / one for v in st.enc_prev]
    spk = [t(v) for v in spikes]
    return State(s, dec, phi, prev, spk, [None] * len(s))


def torch_unpool_index(idx_mn: np.ndarray, conv_w: int) -> torch.Tensor:
    """Argmax ``m*2+n`` per pooled ``(r, c)`` -> PyTorch's flat index ``(2r+m) Wc + 2c+n``."""
    bsz, ch, h, w = idx_mn.shape
    r = np.arange(h)[:, None]
    c = np.arange(w)[None, :]
    flat = (2 * r + (idx_mn >> 1)) * conv_w + 2 * c + (idx_mn & 1)
    return torch.as_tensor(flat.astype(np.int64))


def real_update_of_traces(model: RealModel, net: Network, traces) -> list:
    """Per layer ``(D_w, D_b)``: the real EP step ``lr/(2 beta) [dPhi(+) - dPhi(-)]``
    (batch mean, ``algorithm.md`` §3.3) at the states ``trace / trace_max``, in
    integer units (weights ``* 2**e``, biases ``* ONE``), float64 numpy."""
    tmax = 2 ** net.widths.trace_bits - 1
    one = 2 ** net.widths.state_bits
    h = model.hyper

    def st_of(sign):
        s = [torch.as_tensor((t.plus if sign > 0 else t.minus) / tmax, dtype=model.dtype)
             for t in traces]
        idx = [None]
        for l, t in enumerate(traces[1:], start=1):
            im = t.idx_plus if sign > 0 else t.idx_minus
            idx.append(None if im is None else torch_unpool_index(im, model.conv_hw[l][1]))
        return State(s, [None] * len(s), [None] * len(s), [None] * len(s), [None] * len(s), idx)

    dp, dm = model.dphi(st_of(+1)), model.dphi(st_of(-1))
    out = []
    for l, ((wp, bp), (wm, bm)) in enumerate(zip(dp, dm)):
        k = h.lrs[l] / (2.0 * h.beta)
        out.append(((k * (wp - wm) * 2.0 ** net.weight_exp[l]).numpy(),
                    (k * (bp - bm) * one).numpy()))
    return out


def check_update(net: Network, model: RealModel, traces, slack: float = 1e-6) -> None:
    """``delta`` (core) against ``D`` = lr/(2 beta B) sum(products) in integer units.

    The core computes ``round_stoch(G M 2^-K)`` with ``M 2^-K`` the real factor to a
    15-bit mantissa (relative error <= 2^-15) and ``beta`` a Q12 constant (absolute
    error <= 2^-13, relative <= 2^-13 / beta in the 1/beta), so elementwise
    ``|delta - D| < 1 + |D| (2^-15 + 2^-13 / (beta - 2^-13))``; stochastic rounding is unbiased, so over the
    ``N`` parameters with ``D != 0`` the mean of ``sign(D)(delta - D)`` lies within
    Hoeffding's ``sqrt(ln(2/1e-9) / (2N))`` (terms in an interval of width 1) plus
    the mantissa's share: a wrong factor, a biased rounding or a wrong sign fails it.
    """
    old_w = [w.astype(np.int64) for w in net.weights_q]
    old_b = [b.astype(np.int64) for b in net.biases_q]
    stats = update_network(net, contrastive(net, traces))
    assert stats.weight_saturations.sum() == 0 and stats.bias_saturations.sum() == 0
    real = real_update_of_traces(model, net, traces)
    beta = model.hyper.beta
    beta_exact = float(beta * 4096).is_integer()        # a Q12 value: no error in 1/beta
    rel = 2.0 ** -15 + (0.0 if beta_exact else 2.0 ** -13 / (beta - 2.0 ** -13))
    signed, mags, n_total = [], [], 0
    for l, (dw, db) in enumerate(real):
        for what, new, old, d in (("weights", net.weights_q[l], old_w[l], dw),
                                  ("biases", net.biases_q[l], old_b[l], db)):
            delta = new.astype(np.int64) - old
            err = np.abs(delta - d)
            bound = 1.0 + np.abs(d) * rel + slack
            worst = int(np.argmax(err - bound))
            assert np.all(err < bound), (
                f"layer {l + 1} {what}: delta {delta.flat[worst]} vs real {d.flat[worst]:.4f}")
            nz = d != 0
            signed.append((np.sign(d[nz]) * (delta[nz] - d[nz])).ravel())
            mags.append(np.abs(d[nz]).ravel())
            n_total += int(np.count_nonzero(delta))
    signed = np.concatenate(signed)
    n = signed.size
    assert n > 100 and n_total > 0, "the update is (nearly) empty: the check would be vacuous"
    tol = math.sqrt(math.log(2 / 1e-9) / (2 * n)) + rel * np.concatenate(mags).mean()
    assert abs(signed.mean()) <= tol, f"biased update: mean signed error {signed.mean():.4f} > {tol:.4f}"

"""The neuron update of a hidden layer in 32-bit lanes: the same integers, twice the lanes.

:func:`neurochip.neuron.neuron_step` and :func:`~neurochip.neuron.encode_step`
are written for int64 (they hold every rule once, and the PyTorch mirror and
Lava run their twins).  On AVX2, int64 lanes are slow: four per register, the
products and the arithmetic right shifts emulated by several instructions.
Every register of a hidden neuron is 24 bits wide, so the sequence fits in
int32 once its two Q12 products are split (:func:`mul_q12`); this module runs
it that way, eight lanes per register, for every layer whose nudge is 0 (the
output layer, nudged in the training phases, keeps the int64 step).

Exactness: :func:`neurochip.bounds.int32_lanes_exact` checks, once per
network, the bounds under which every intermediate below stays inside int32
(Q12 factors in ``[0, 4096]``; ``ONE``, the biases and the registers within
the widths the network accepts), and the kernel falls back to the int64 step otherwise.  Tests
compare this update with the int64 step over the whole register range
(tests/neurochip/test_core_lanes.py), and every core == mirror == Lava test
runs through it.

Numba types ``int32 op int32`` as int64; wrapping each result in ``I32``
(a truncation that is exact under the bounds) lets LLVM narrow the loop to
int32 vectors.  The encoder's last activation (``encp``) is the activation at
the start of the step, ``s``, in every step of every execution (both are set to
``s'`` together, start at 0 together and are restored from the free phase's
snapshot together): the update reads ``s`` and leaves that register alone,
and the kernel copies ``s`` into it at the end of each phase, where it is
recorded and snapshotted.  The aligned input still needs int64 (its shifts can
exceed 32 bits before the saturation): it is computed in a first pass over a chunk of
:data:`CHUNK` neurons into int32 scratch, so that the second pass has no int64
lane at all.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import numerics as nx
from ..kinds import K_ACTIVE, K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI, K_UPDATES
from .meta import M_FB_MULT, M_SH_FB, M_SH_FWD, M_SH_OUT

I32 = np.int32
#: neurons per chunk: the int32 scratch of aligned inputs stays in L1 (4 KiB)
CHUNK = 1024
_Q12_MASK = nx.Q12_ONE - 1
_Q12_HALF = nx.Q12_ONE >> 1


@njit(cache=True, inline="always")
def mul_q12(c, d):
    """``round_shift(c * d, 12)`` in int32 for ``0 <= c <= 4096``, ``|d| < 2**30``.

    With ``d = dh 2**12 + dl`` (``dh = d >> 12``, ``0 <= dl < 2**12``),
    ``(c d + 2**11) >> 12 = c dh + ((c dl + 2**11) >> 12)`` exactly, because
    ``c dh 2**12`` is a multiple of ``2**12``; both products stay below
    ``2**30``.
    """
    dh = I32(d >> nx.Q12_BITS)
    dl = I32(d & I32(_Q12_MASK))
    return I32(I32(c * dh) + I32(I32(I32(c * dl) + I32(_Q12_HALF)) >> nx.Q12_BITS))


@njit(cache=True, inline="always")
def update_layer_lanes(row, n_off, size, bias32, u_fwd, u_fb, s, dec, psi, qbuf, inp32, dyn,
                       counts_pl):
    """One step of a hidden layer (nudge 0): the int64 step's integers in int32 lanes.

    Parameters
    ----------
    row : int64 ``(M_NCOLS,)``, the layer's meta row (alignment shifts).
    n_off, size : the layer's first neuron and neuron count (flat internal order).
    bias32 : int32 ``(n_all,)``, biases (S fraction bits).
    u_fwd, u_fb : int32 or int64 ``(n_all,)``, summed weights; consumed (zeroed).
    s, dec, psi : int32 ``(n_all,)``, activation, decoder and encoder residue (S fraction
        bits); updated in place.  The encoder's last activation is ``s`` itself (see
        the module docstring): the caller copies ``s`` into that register where it is read.
    qbuf : int8 ``(>= n_all,)``, 0/1 spikes of the step (written).
    inp32 : int32 ``(CHUNK,)``, scratch for the aligned inputs.
    dyn : :class:`neurochip.neuron.Dynamics`; counts_pl : int64 ``(N_COUNTS,)``, the
        layer's counters (updates, active, saturations).

    The sequence is that of :func:`neurochip.neuron.neuron_step` (``beta_q = 0``) and
    :func:`neurochip.neuron.encode_step`; see the module docstring for why int32.
    """
    sh_fwd, fb_mult, sh_fb, sh_out = row[M_SH_FWD], row[M_FB_MULT], row[M_SH_FB], row[M_SH_OUT]
    fbm = np.int64(I32(fb_mult))
    lo64, hi64 = np.int64(dyn.reg_lo), np.int64(dyn.reg_hi)
    lo, hi = I32(dyn.reg_lo), I32(dyn.reg_hi)
    lam, eps, one = I32(dyn.lam_q), I32(dyn.eps_q), I32(dyn.one)
    lam_c = I32(nx.Q12_ONE - dyn.lam_q)
    thr_lam, one_lam = I32(dyn.thr_lam), I32(dyn.one_lam)
    zero = I32(0)
    active = 0
    sat_in = 0
    sat_dec = 0
    sat_psi = 0
    end = n_off + size
    for c0 in range(n_off, end, CHUNK):
        c1 = min(c0 + CHUNK, end)
        m = c1 - c0
        # pass 1 (int64): aligned, saturated input (align_input, saturate)
        uf_, ub_ = u_fwd[c0:c1], u_fb[c0:c1]
        si = 0
        for t in range(m):
            inp = nx.round_shift((np.int64(uf_[t]) << sh_fwd) + ((np.int64(ub_[t]) * fbm) << sh_fb),
                                 sh_out)
            inp_s = min(max(inp, lo64), hi64)
            si += inp_s != inp
            inp32[t] = I32(inp_s)
            uf_[t] = 0
            ub_[t] = 0
        sat_in += si
        # pass 2 (int32): decoder, Euler step with clamp, sigma-delta encoder
        b_, s_, dec_, psi_ = bias32[c0:c1], s[c0:c1], dec[c0:c1], psi[c0:c1]
        q_ = qbuf[c0:c1]
        act = zero
        sd = zero
        sp = zero
        for t in range(m):
            s_old, d_old = s_[t], dec_[t]
            d = I32(d_old + mul_q12(lam, I32(inp32[t] - d_old)))           # decoder_step
            d_s = min(max(d, lo), hi)
            sd = I32(sd + I32(d_s != d))
            drive = I32(d_s + b_[t])
            s_new = min(max(I32(s_old + mul_q12(eps, I32(drive - s_old))), zero), one)  # state_step
            pred = I32(I32(I32(lam_c * s_old) + I32(_Q12_HALF)) >> nx.Q12_BITS)   # encoder_step
            v = I32(I32(psi_[t] + s_new) - pred)
            q = v > thr_lam
            p = I32(v - I32(I32(q) * one_lam))
            p_s = min(max(p, lo), hi)
            sp = I32(sp + I32(p_s != p))
            act = I32(act + I32((s_new != s_old) | (d_s != d_old)))
            dec_[t] = d_s
            s_[t] = s_new
            psi_[t] = p_s
            q_[t] = q
        active += act
        sat_dec += sd
        sat_psi += sp
    counts_pl[K_UPDATES] += size
    counts_pl[K_ACTIVE] += active
    counts_pl[K_SAT_INPUT] += sat_in
    counts_pl[K_SAT_DEC] += sat_dec
    counts_pl[K_SAT_PSI] += sat_psi

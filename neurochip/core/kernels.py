"""The simulation kernels: a batch of EP training samples, one sample per thread.

Per step ``k`` (synchronous, every edge one step of delay):

1. scatter the spikes every layer emitted at ``k-1`` into the forward and
   feedback accumulators of its neighbours (:mod:`.scatter`; each layer's two
   inputs together, from the top layer down: the sums are exact in any order);
2. update every neuron of layers ``1..L`` (:func:`neurochip.neuron.neuron_step`)
   and run its encoder (:func:`neurochip.neuron.encode_step`), layer by layer
   (layer 0 encodes the image), to emit the spikes of step ``k``; the hidden
   layers run the same integers in 32-bit lanes (:mod:`.lanes`) when the
   bounds allow it.

The neuron update is a branch-free loop over slices (it vectorises), which also
consumes and zeroes the accumulators; spikes are compacted into index lists
afterwards, eight neurons at a time; input pixels that are 0 never spike and are skipped; all scratch is
allocated once per sample, never per step; the snapshot of the free phase is a
few vector copies per sample.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .. import numerics as nx
from ..kernel_cache import drop_stale
from ..kinds import (K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI,
                     K_SPIKES, K_UPDATES, REC_DEC, REC_ENC_PREV, REC_PSI, REC_S)
from ..neuron import (Alignment, Dynamics, EncoderState, NeuronState, encode_step, neuron_step,
                      phase_beta_q, phase_steps)
from .meta import (C_BETA, C_EPS, C_LAM, C_NPHASES, C_ONE, C_ONE_LAM, C_STATE_BITS, C_T1, C_T2,
                   C_THR_LAM, C_TRACE_MAX, M_FB_MULT, M_OFF, M_SH_FB, M_SH_FWD, M_SH_OUT, M_SIZE)
from .lanes import CHUNK, update_layer_lanes
from .scatter import _scatter_feedback, _scatter_forward

drop_stale(__file__)   # kernels inline numerics, neuron and scatter: recompile when they change


@njit(cache=True, inline="always")
def _update_layer(row, n_off, size, bias, u_fwd, u_fb, s, dec, psi, encp, qbuf,
                  dyn, beta_q, label, counts_pl):
    """Neuron update (:func:`neurochip.neuron.neuron_step`) and encoder of one layer.

    Written over slices with branch-free arithmetic so that it vectorises;
    consumes (and zeroes) the synaptic accumulators; writes the spikes as
    0/1 into ``qbuf``.
    """
    align = Alignment(row[M_SH_FWD], row[M_FB_MULT], row[M_SH_FB], row[M_SH_OUT])
    end = n_off + size
    uf_, ub_, b_ = u_fwd[n_off:end], u_fb[n_off:end], bias[n_off:end]
    s_, dec_, psi_, encp_ = s[n_off:end], dec[n_off:end], psi[n_off:end], encp[n_off:end]
    q_ = qbuf[n_off:end]
    one = dyn.one
    active = 0
    sat_in = 0
    sat_dec = 0
    sat_psi = 0
    for t in range(size):
        s_old, d_old = np.int64(s_[t]), np.int64(dec_[t])
        new, si, sd = neuron_step(np.int64(uf_[t]), np.int64(ub_[t]), np.int64(b_[t]),
                                  one * (t == label), beta_q, NeuronState(s_old, d_old), align, dyn)
        uf_[t] = 0
        ub_[t] = 0
        sat_in += si
        sat_dec += sd
        active += (new.s != s_old) | (new.dec != d_old)
        dec_[t] = new.dec
        s_[t] = new.s
        q, enc, sat = encode_step(new.s, EncoderState(np.int64(psi_[t]), np.int64(encp_[t])), dyn)
        sat_psi += sat
        psi_[t] = enc.psi
        encp_[t] = enc.prev
        q_[t] = q
    counts_pl[K_UPDATES] += size
    counts_pl[K_ACTIVE] += active
    counts_pl[K_SAT_INPUT] += sat_in
    counts_pl[K_SAT_DEC] += sat_dec
    counts_pl[K_SAT_PSI] += sat_psi


# one 0/1 byte per neuron, eight at a time: the multiply gathers the eight bytes'
# low bits into the top byte (bit i = neuron i), whose set bits _SPIKE_POS lists
_BYTE_BITS = np.uint64(0x0102040810204080)
_SPIKE_POS = np.array([[i for i in range(8) if m >> i & 1] + [0] * (8 - bin(m).count("1"))
                       for m in range(256)], np.int32)
_SPIKE_CNT = np.array([bin(m).count("1") for m in range(256)], np.int64)


@njit(cache=True, inline="always")
def _compact(qbuf, q_words, n_off, size, spk_idx):
    """Indices of the spiking neurons of a layer into ``spk_idx[n_off:]``; their count.

    ``q_words`` is ``qbuf`` (int8 0/1) viewed as uint64: eight neurons
    without a spike are skipped with one test (most are silent); the spikes of
    a word are found without a branch per neuron (their 8-bit mask indexes
    :data:`_SPIKE_POS`).  All eight slots are written: the ones past the count
    are overwritten later and stay inside the layer (the count so far is at
    most the number of neurons before the word).
    """
    cnt = 0
    t = n_off
    end = n_off + size
    while t < end and (t & 7) != 0:
        spk_idx[n_off + cnt] = t
        cnt += qbuf[t]
        t += 1
    while t + 8 <= end:
        m = (q_words[t >> 3] * _BYTE_BITS) >> np.uint64(56)
        dst = spk_idx[n_off + cnt:n_off + cnt + 8]
        pos = _SPIKE_POS[m]
        for i in range(8):
            dst[i] = t + pos[i]
        cnt += _SPIKE_CNT[m]
        t += 8
    while t < end:
        spk_idx[n_off + cnt] = t
        cnt += qbuf[t]
        t += 1
    return cnt


class CoreTables(NamedTuple):
    """The network's read-only tables, shared by every sample of a batch.

    Attributes
    ----------
    meta : int64 ``(L+1, M_NCOLS)``, one row per layer (columns in :mod:`.meta`).
    coords : int32 ``(n_all, 3)``, ``(y, x, channel)`` of every conv-map neuron.
    plan : int64 ``(n_all, 4)``, forward scatter runs of every neuron (:func:`.scatter._scatter_plan`).
    consts : int64 ``(C_NCONST,)``, the constants vector (Q12 constants, ``ONE``, T1, T2, phases).
    w_fwd, w_fb : int16 or int32, forward / feedback weight tables of the conv layers (weight units).
    w_fc_fwd, w_fc_fb : int8, int16 or int32, those of the fc layers (plain weights).
    bias : int32 ``(n_all,)``, every neuron's bias (S fraction bits; 0 for the input).
    pool_offs : int64 ``(L+1,)``, each max-pool layer's first slot in ``SampleScratch.pool_idx``.
    lanes32 : bool, hidden layers update in 32-bit lanes (:mod:`.lanes`; the bounds allow it).
    """

    meta: np.ndarray
    coords: np.ndarray
    plan: np.ndarray
    consts: np.ndarray
    w_fwd: np.ndarray
    w_fb: np.ndarray
    w_fc_fwd: np.ndarray
    w_fc_fb: np.ndarray
    bias: np.ndarray
    pool_offs: np.ndarray
    lanes32: bool


class SampleScratch(NamedTuple):
    """One sample's working registers and buffers, allocated zeroed once per sample.

    Attributes
    ----------
    s, dec, psi, encp : int32 ``(n_all,)``, activation, decoder, encoder residue and the
        encoder's last activation (S fraction bits; registers of at most 24 bits), flat
        internal order.
    spk_idx : int32 ``(n_all,)``, each layer's spiking neurons of the last step, from its offset.
    spk_cnt : int64 ``(L+1,)``, their counts.
    u_fwd, u_fb : int32 or int64 ``(n_all,)``, synaptic accumulators (summed weights).
    cacc : same dtype ``(n_cacc,)``, full-resolution conv sums before a max-pool.
    pool_idx : int8 ``(n_pool,)``, the max-pool argmax (0..3) of every pooled neuron.
    snap_s, snap_dec, snap_psi, snap_encp, snap_idx, snap_cnt : copies of the above at the
        end of the free phase (the -beta phase restarts from them).
    qbuf : int8 ``(ceil(n_all/8)*8,)``, 0/1 spikes of the step; q_words : its uint64 view.
    nz : int64 ``(N0,)``, indices of the non-zero input pixels.
    srcs : int64 ``(n_all,)``, table offsets of a spike group (scatter scratch).
    inp32 : int32 ``(lanes.CHUNK,)``, aligned inputs of a chunk (:mod:`.lanes` scratch).
    """

    s: np.ndarray
    dec: np.ndarray
    psi: np.ndarray
    encp: np.ndarray
    spk_idx: np.ndarray
    spk_cnt: np.ndarray
    u_fwd: np.ndarray
    u_fb: np.ndarray
    cacc: np.ndarray
    pool_idx: np.ndarray
    snap_s: np.ndarray
    snap_dec: np.ndarray
    snap_psi: np.ndarray
    snap_encp: np.ndarray
    snap_idx: np.ndarray
    snap_cnt: np.ndarray
    qbuf: np.ndarray
    q_words: np.ndarray
    nz: np.ndarray
    srcs: np.ndarray
    inp32: np.ndarray


class SampleOutputs(NamedTuple):
    """Where one sample's results go (views of the batch's arrays, see ``BatchResult``).

    Attributes
    ----------
    traces : int32 ``(2, n_all)``, trace registers after +beta / -beta.
    phase_idx : int8 ``(2, n_pool)``, max-pool argmax at the end of each nudged phase.
    s_free : int64 ``(classes,)``, output activations after the free phase (S fraction bits).
    counts : int64 ``(3, L+1, N_COUNTS)``, event and saturation counts per phase and layer.
    rec_spk : uint8 ``(steps, n_all)`` and rec_state : int64 ``(3, 4, n_all)`` when
        recording, else empty (first axis 0).
    """

    traces: np.ndarray
    phase_idx: np.ndarray
    s_free: np.ndarray
    counts: np.ndarray
    rec_spk: np.ndarray
    rec_state: np.ndarray


@njit(cache=True)
def _run_sample(tables, scratch, out, x_fp, label, reg_lo, reg_hi):
    """Simulate one EP training sample: free phase, then +beta and -beta (``C_NPHASES``).

    Parameters
    ----------
    tables : :class:`CoreTables`; scratch : :class:`SampleScratch` (zeroed);
    out : :class:`SampleOutputs` (written).
    x_fp : int64 ``(N0,)``, quantised pixels (S fraction bits), internal order.
    label : int, the class nudged towards (-1: none; only read when beta != 0).
    reg_lo, reg_hi : int, the saturated register range (``numerics.REG_MIN``, ``REG_MAX``).
    """
    meta, coords, plan, consts, w_fwd, w_fb, w_fc_fwd, w_fc_fb, bias, pool_offs, lanes32 = tables
    (s, dec, psi, encp, spk_idx, spk_cnt, u_fwd, u_fb, cacc, pool_idx, snap_s, snap_dec, snap_psi,
     snap_encp, snap_idx, snap_cnt, qbuf, q_words, nz, srcs, inp32) = scratch
    traces, phase_idx, s_free, counts, rec_spk, rec_state = out
    n_layers = meta.shape[0] - 1
    n_all = s.shape[0]
    dyn = Dynamics(consts[C_LAM], consts[C_EPS], consts[C_ONE], consts[C_THR_LAM],
                   consts[C_ONE_LAM], reg_lo, reg_hi)
    t1, t2, n_phases = consts[C_T1], consts[C_T2], consts[C_NPHASES]
    n0 = meta[0, M_SIZE]
    out_off, out_size = meta[n_layers, M_OFF], meta[n_layers, M_SIZE]
    recording = rec_spk.shape[0] > 0
    # fresh state for every sample (the scratch arrays arrive zeroed); the
    # input layer: only non-zero pixels can ever spike (a = 0 keeps psi = 0)
    n_nz = 0
    for n in range(n0):
        s[n] = x_fp[n]
        if x_fp[n] != 0:
            nz[n_nz] = n
            n_nz += 1
    step_global = 0
    for phase in range(n_phases):
        if phase == 2:  # restart the -beta phase from the complete free state
            s[:] = snap_s
            dec[:] = snap_dec
            psi[:] = snap_psi
            encp[:] = snap_encp
            spk_idx[:] = snap_idx
            spk_cnt[:] = snap_cnt
        beta_q = phase_beta_q(phase, consts[C_BETA])
        n_steps = phase_steps(phase, t1, t2)
        for _ in range(n_steps):
            # 1. synaptic input from the spikes of the previous step
            for l in range(n_layers, 0, -1):
                counts[phase, l, K_EVENTS_FWD] += _scatter_forward(
                    meta, coords, plan, l, w_fwd, w_fc_fwd, spk_idx, spk_cnt, u_fwd, cacc,
                    pool_idx, pool_offs[l], srcs)
                if l < n_layers:
                    counts[phase, l, K_EVENTS_FB] += _scatter_feedback(
                        meta, coords, l + 1, w_fb, w_fc_fb, spk_idx, spk_cnt, u_fb, pool_idx,
                        pool_offs[l + 1], srcs)
            # 2.+3. neuron updates and encoders, layer by layer
            cnt = 0
            sat_psi = 0
            for k in range(n_nz):
                n = nz[k]
                a = s[n]
                q, enc, sat = encode_step(a, EncoderState(psi[n], encp[n]), dyn)
                sat_psi += sat
                psi[n] = enc.psi
                encp[n] = enc.prev
                spk_idx[cnt] = n
                cnt += q
            spk_cnt[0] = cnt
            counts[phase, 0, K_SPIKES] += cnt
            counts[phase, 0, K_SAT_PSI] += sat_psi
            for l in range(1, n_layers + 1):
                off, size = meta[l, M_OFF], meta[l, M_SIZE]
                if lanes32 and l < n_layers:    # hidden layers: never nudged
                    update_layer_lanes(meta[l], off, size, bias, u_fwd, u_fb, s, dec, psi, qbuf,
                                       inp32, dyn, counts[phase, l])
                else:
                    _update_layer(meta[l], off, size, bias, u_fwd, u_fb, s, dec, psi, encp, qbuf,
                                  dyn, beta_q if l == n_layers else 0, label, counts[phase, l])
                cnt = _compact(qbuf, q_words, off, size, spk_idx)
                spk_cnt[l] = cnt
                counts[phase, l, K_SPIKES] += cnt
            if recording:
                for l in range(n_layers + 1):
                    off = meta[l, M_OFF]
                    for k in range(spk_cnt[l]):
                        rec_spk[step_global, spk_idx[off + k]] = 1
            step_global += 1
        # end of phase
        if lanes32:     # the hidden layers' encoder register (lanes.py leaves it to s)
            h0 = meta[1, M_OFF]
            h1 = meta[n_layers, M_OFF]
            encp[h0:h1] = s[h0:h1]
        if recording:
            for n in range(n_all):
                rec_state[phase, REC_S, n] = s[n]
                rec_state[phase, REC_DEC, n] = dec[n]
                rec_state[phase, REC_PSI, n] = psi[n]
                rec_state[phase, REC_ENC_PREV, n] = encp[n]
        if phase == 0:
            for n in range(out_size):
                s_free[n] = s[out_off + n]
            if n_phases > 1:
                snap_s[:] = s
                snap_dec[:] = dec
                snap_psi[:] = psi
                snap_encp[:] = encp
                snap_idx[:] = spk_idx
                snap_cnt[:] = spk_cnt
        else:
            tmax, sbits = consts[C_TRACE_MAX], consts[C_STATE_BITS]
            for n in range(n_all):
                traces[phase - 1, n] = nx.trace_latch(s[n], tmax, sbits)
            for t in range(pool_idx.shape[0]):
                phase_idx[phase - 1, t] = pool_idx[t]


@njit(cache=True, parallel=True)
def _run_batch(tables, x_fp, labels, reg_lo, reg_hi, u_proto, c_proto, n_pool, traces,
               phase_idx, s_free, counts, rec_spk, rec_state):
    """Simulate a batch, one sample per thread (``prange``); see :func:`_run_sample`.

    ``x_fp``: int64 ``(B, N0)``; ``labels``: int64 ``(B,)``; ``u_proto``, ``c_proto``:
    zeroed accumulators of the layout's dtype (``(n_all,)``, ``(n_cacc,)``) to copy;
    ``n_pool``: max-pool slots; the outputs are the batch arrays of ``BatchResult``.
    """
    meta, bias = tables.meta, tables.bias
    n_batch = x_fp.shape[0]
    n_all = bias.shape[0]
    n_l1 = meta.shape[0]
    n0 = meta[0, M_SIZE]
    for b in prange(n_batch):
        # per-sample scratch, allocated once per sample (never per step)
        s = np.zeros(n_all, np.int32)
        dec = np.zeros(n_all, np.int32)
        psi = np.zeros(n_all, np.int32)
        encp = np.zeros(n_all, np.int32)
        spk_idx = np.zeros(n_all, np.int32)
        spk_cnt = np.zeros(n_l1, np.int64)
        u_fwd = np.zeros_like(u_proto)
        u_fb = np.zeros_like(u_proto)
        cacc = np.zeros_like(c_proto)
        pool_idx = np.zeros(n_pool, np.int8)
        snap_s = np.zeros(n_all, np.int32)
        snap_dec = np.zeros(n_all, np.int32)
        snap_psi = np.zeros(n_all, np.int32)
        snap_encp = np.zeros(n_all, np.int32)
        snap_idx = np.zeros(n_all, np.int32)
        snap_cnt = np.zeros(n_l1, np.int64)
        qbuf = np.zeros((n_all + 7) // 8 * 8, np.int8)
        q_words = qbuf.view(np.uint64)
        nz = np.zeros(n0, np.int64)
        srcs = np.zeros(n_all, np.int64)
        inp32 = np.zeros(CHUNK, np.int32)
        rs = rec_spk[b] if rec_spk.shape[0] > 0 else rec_spk[0:0, 0]
        rst = rec_state[b] if rec_state.shape[0] > 0 else rec_state[0:0, 0]
        scratch = SampleScratch(s, dec, psi, encp, spk_idx, spk_cnt, u_fwd, u_fb, cacc, pool_idx,
                                snap_s, snap_dec, snap_psi, snap_encp, snap_idx, snap_cnt, qbuf,
                                q_words, nz, srcs, inp32)
        out = SampleOutputs(traces[b], phase_idx[b], s_free[b], counts[b], rs, rst)
        _run_sample(tables, scratch, out, x_fp[b], labels[b], reg_lo, reg_hi)

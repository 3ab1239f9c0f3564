"""The Numba integer core: event-driven simulation of one EP training sample.

The kernels follow ``docs/numerics.md`` step for step and take every integer
rule from :mod:`neurochip.numerics`.  Internally a sample's neurons of all
layers (input = layer 0) live in one flat vector; conv maps are stored
channel-last (``H, W, C``) so that one spike adds a contiguous row of weights.
:class:`CoreLayout` converts to and from PyTorch's ``C, H, W`` order.

Per step ``k`` (synchronous, every edge one step of delay):

1. scatter the spikes every layer emitted at ``k-1`` into the forward and
   feedback accumulators of its neighbours (only spiking neurons cost work);
2. update every neuron of layers ``1..L`` (align, decode, nudge, Euler, clamp)
   and run its encoder, layer by layer (layer 0 encodes the image), to emit
   the spikes of step ``k``.

Speed (docs/speed.md) without changing an integer:

* the forward tables store a conv kernel row's taps in the order of the
  target columns they reach, so a spike adds one contiguous run of weights
  per kernel row (``_add_run``, vectorised), and the runs of every source
  neuron are precomputed (``CoreLayout.plan``; no division per spike);
* weight tables are int16 and accumulators int32 whenever a static bound
  proves every value fits (:func:`_table_dtypes`), else int32 / int64;
* the neuron update is a branch-free loop over slices (it vectorises), which
  also consumes and zeroes the accumulators; spikes are compacted into index
  lists afterwards; input pixels that are 0 never spike and are skipped;
* all scratch is allocated once per sample, never per step; the snapshot of
  the free phase is five vector copies per sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from . import numerics as nx
from .kernel_cache import drop_stale
from .neuron import (Alignment, Dynamics, EncoderState, NeuronState, encode_step, neuron_step,
                     phase_beta_q, phase_steps)
from .pooling import fused_kernel, kernel_side, weights_per_entry
from .kinds import (COUNT_NAMES, K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC,  # noqa: F401
                    K_SAT_INPUT, K_SAT_PSI, K_SPIKES, K_UPDATES, N_COUNTS, PHASES, REC_DEC,
                    REC_ENC_PREV, REC_PSI, REC_S)
from .network import Network

drop_stale(__file__)   # kernels inline numerics.py: recompile when it changes

# meta table columns (one row per layer, row 0 = input)
(M_KIND, M_IN_OFF, M_IN_SIZE, M_OFF, M_SIZE, M_CIN, M_HIN, M_WIN, M_C, M_H, M_W, M_K, M_PAD,
 M_HC, M_WC, M_WF_OFF, M_WB_OFF, M_KF, M_SH_FWD, M_FB_MULT, M_SH_FB, M_SH_OUT, M_IS_MAX,
 M_CACC_OFF, M_NCOLS) = range(25)
KIND_INPUT, KIND_CONV, KIND_FC = 0, 1, 2

# constants vector
(C_ONE, C_BETA, C_EPS, C_LAM, C_THR_LAM, C_ONE_LAM, C_TRACE_MAX, C_STATE_BITS, C_T1, C_T2,
 C_NPHASES, C_NCONST) = range(12)

# the spikes of one conv-map position are added as a group (_add_group) when the
# map has at least this many channels; with fewer, groups are mostly single
# spikes and the grouping costs more than it saves (measured, docs/speed.md)
GROUP_MIN_CHANNELS = 32


# ---------------------------------------------------------------- layout
@dataclass
class CoreLayout:
    """Where each layer lives in the flat per-sample vector, and index maps.

    ``perm[l]`` maps canonical (C, H, W) flat index -> internal index within
    the layer, so ``internal[perm] == canonical``.
    """

    meta: np.ndarray           # int64 (L+1, M_NCOLS)
    offsets: list[int]
    sizes: list[int]
    n_all: int
    n_cacc: int
    perm: list[np.ndarray]     # per layer 0..L
    coords: np.ndarray = None  # int32 (n_all, 3): (y, x, channel) of every conv-map neuron
    plan: np.ndarray = None    # int64 (n_all, 4): forward scatter runs of every neuron
    w_dtype: type = np.int32   # weight tables: int16 when every entry fits
    acc_dtype: type = np.int64  # synaptic accumulators: int32 when no sum can overflow it

    @staticmethod
    def build(net: Network) -> "CoreLayout":
        arch, consts = net.arch, net.constants()
        n_layers = arch.n_layers
        sizes = arch.layer_sizes()
        offsets = list(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int))
        meta = np.zeros((n_layers + 1, M_NCOLS), dtype=np.int64)
        shapes = [arch.input_shape] + arch.state_shapes()
        perm = []
        for l, shp in enumerate(shapes):
            if len(shp) == 3:
                c, h, w = shp
                # canonical index (ci, y, x) -> internal (y, x, ci)
                ci, y, x = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
                perm.append(((y * w + x) * c + ci).ravel().astype(np.int64))
            else:
                perm.append(np.arange(shp[0], dtype=np.int64))
        c0, h0, w0 = arch.input_shape
        meta[0, [M_KIND, M_OFF, M_SIZE, M_C, M_H, M_W]] = [KIND_INPUT, 0, sizes[0], c0, h0, w0]
        wf_off = wb_off = cacc_off = 0
        is_max = net.hyper.pool == "max"
        for l in range(1, n_layers + 1):
            spec = arch.layers[l - 1]
            lc = consts.layers[l - 1]
            row = meta[l]
            prev = shapes[l - 1]
            row[M_IN_OFF], row[M_IN_SIZE] = offsets[l - 1], sizes[l - 1]
            row[M_OFF], row[M_SIZE] = offsets[l], sizes[l]
            if len(prev) == 3:
                row[M_CIN], row[M_HIN], row[M_WIN] = prev
            else:
                row[M_CIN], row[M_HIN], row[M_WIN] = prev[0], 1, 1
            row[M_SH_FWD], row[M_FB_MULT], row[M_SH_FB], row[M_SH_OUT] = (
                lc.sh_fwd, lc.fb_mult, lc.sh_fb, lc.sh_out)
            n_w = int(np.prod(arch.weight_shapes()[l - 1]))
            if spec.kind == "conv":
                c, h, w = shapes[l]
                _, hc, wc = arch.conv_shape(l - 1)
                kf = kernel_side(spec.kernel, is_max)
                row[M_KIND] = KIND_CONV
                row[M_C], row[M_H], row[M_W] = c, h, w
                row[M_K], row[M_PAD], row[M_HC], row[M_WC], row[M_KF] = (
                    spec.kernel, spec.padding, hc, wc, kf)
                row[M_IS_MAX] = int(is_max)
                row[M_CACC_OFF] = cacc_off
                if is_max:
                    cacc_off += c * hc * wc
                n_w = c * row[M_CIN] * kf * kf
            else:
                row[M_KIND] = KIND_FC
                row[M_C], row[M_H], row[M_W] = spec.channels, 1, 1
            row[M_WF_OFF], row[M_WB_OFF] = wf_off, wb_off
            wf_off += n_w
            wb_off += n_w
        # (y, x, channel) of every neuron of a map, so that kernels need no division
        coords = np.zeros((int(sum(sizes)), 3), np.int32)
        for l, shp in enumerate(shapes):
            if len(shp) == 3:
                c, h, w = shp
                y, x, ci = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
                coords[offsets[l]:offsets[l] + sizes[l]] = np.stack(
                    [y.ravel(), x.ravel(), ci.ravel()], axis=1)
        w_dtype, acc_dtype = _table_dtypes(meta, net.widths.weight_bits)
        plan = _scatter_plan(meta, coords, int(sum(sizes)))
        return CoreLayout(meta, offsets, sizes, int(sum(sizes)), max(cacc_off, 1), perm,
                          coords, plan, w_dtype, acc_dtype)

    def to_internal(self, layer: int, canonical: np.ndarray) -> np.ndarray:
        """``(..., N_l)`` canonical -> internal order."""
        out = np.empty_like(canonical)
        out[..., self.perm[layer]] = canonical
        return out

    def to_canonical(self, layer: int, internal: np.ndarray) -> np.ndarray:
        """``(..., N_l)`` internal -> canonical (C, H, W) flat order."""
        return internal[..., self.perm[layer]]

    def split(self, flat: np.ndarray, canonical: bool = True) -> list[np.ndarray]:
        """Split ``(..., n_all)`` into per-layer arrays (canonical order)."""
        parts = []
        for l, (o, n) in enumerate(zip(self.offsets, self.sizes)):
            part = flat[..., o:o + n]
            parts.append(self.to_canonical(l, part) if canonical else part)
        return parts


def _table_dtypes(meta: np.ndarray, weight_bits: int) -> tuple[type, type]:
    """Narrowest exact dtypes of the weight tables and the synaptic accumulators.

    A table entry is a weight (``|w| <= 2**(Bw-1)``) or, for avg-pool conv,
    a sum of four.  An accumulator receives each table entry of its layer at
    most once per step (every source neuron spikes at most once and reaches a
    target through one entry), so ``|u| <= fan_in * max|entry|``; int32 is
    used when that bound fits, else int64 (the contract's width).
    """
    w_max = 1 << (weight_bits - 1)
    entry_max = 0
    acc_max = 0
    for l in range(1, len(meta)):
        row = meta[l]
        if row[M_KIND] == KIND_CONV:
            e = w_max * weights_per_entry(bool(row[M_IS_MAX]))
            taps = int(row[M_KF]) ** 2
            fan_fwd, fan_fb = int(row[M_CIN]) * taps, int(row[M_C]) * taps
            if row[M_IS_MAX]:   # the full-resolution conv sums before the max
                fan_fwd = int(row[M_CIN]) * int(row[M_K]) ** 2
        else:
            e = w_max
            fan_fwd, fan_fb = int(row[M_IN_SIZE]), int(row[M_SIZE])
        entry_max = max(entry_max, e)
        acc_max = max(acc_max, e * fan_fwd, e * fan_fb)
    w_dtype = np.int16 if entry_max <= (1 << 15) else np.int32
    acc_dtype = np.int32 if acc_max < (1 << 31) else np.int64
    return w_dtype, acc_dtype


def _kernel_source(net: Network, layout: CoreLayout, l: int) -> np.ndarray:
    """The integer weights layer ``l``'s tables are gathered from (any integer dtype).

    avg-pool conv: the fused ``(K+1)^2`` kernel (:func:`neurochip.pooling.fused_kernel`,
    conv then 2x2 *sum*, int64 ``(Co, Ci, K+1, K+1)``); otherwise ``weights_q[l-1]``.
    """
    row = layout.meta[l]
    w = net.weights_q[l - 1]
    if row[M_KIND] == KIND_CONV and not row[M_IS_MAX]:
        return fused_kernel(w)
    return w


def pack_index_maps(net: Network, layout: CoreLayout) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, where each entry of the forward / feedback table comes from.

    ``(idx_fwd, idx_fb)``, int32 ``(1, n)``: table entry ``t`` is
    ``_kernel_source(net, layout, l).flat[idx[0, t]]``.  conv (the fused
    kernel for avg-pool, the plain one for max-pool): forward as ``[ci, a,
    slot(b), co]`` (:func:`_forward_slots`), feedback ``[co, a, b, ci]``; fc:
    forward ``W^T`` (in, out) and feedback ``W`` (out, in), with conv inputs
    in internal order.  The maps depend only on the architecture, so
    :meth:`CoreNet.refresh` re-packs the tables with one gather per entry.
    """
    meta = layout.meta
    maps = []
    for l in range(1, len(meta)):
        row = meta[l]
        shape = _kernel_source(net, layout, l).shape
        ids = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        if row[M_KIND] == KIND_CONV:
            slots = _forward_slots(shape[-1], row[M_IS_MAX])
            fwd = ids.transpose(1, 2, 3, 0)[:, :, slots]    # ci, a, slot, co
            fb = ids.transpose(0, 2, 3, 1)                   # co, a, b, ci
        else:
            wi = ids[:, _inverse(layout.perm[l - 1])]   # columns in internal order
            fwd, fb = wi.T, wi
        maps.append((fwd.reshape(1, -1).astype(np.int32), fb.reshape(1, -1).astype(np.int32)))
    return maps


@njit(cache=True)
def _gather_sum(table, off, w, idx):
    """``table[off + t] = sum_j w[idx[j, t]]`` over the terms with ``idx >= 0``."""
    for t in range(idx.shape[1]):
        acc = 0
        for j in range(idx.shape[0]):
            k = idx[j, t]
            if k >= 0:
                acc += w[k]
        table[off + t] = acc


def pack_weights(net: Network, layout: CoreLayout,
                 maps: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Forward- and feedback-scatter weight tables (``layout.w_dtype``, flat).

    The layouts are those of :func:`pack_index_maps` (pass its result as
    ``maps`` to skip re-deriving them).
    """
    meta = layout.meta
    if maps is None:
        maps = pack_index_maps(net, layout)
    w_fwd = np.zeros(int(sum(_table_size(meta[l]) for l in range(1, len(meta)))), layout.w_dtype)
    w_fb = np.zeros_like(w_fwd)
    for l in range(1, len(meta)):
        w = np.ascontiguousarray(_kernel_source(net, layout, l)).reshape(-1)
        idx_fwd, idx_fb = maps[l - 1]
        _gather_sum(w_fwd, meta[l, M_WF_OFF], w, idx_fwd)
        _gather_sum(w_fb, meta[l, M_WB_OFF], w, idx_fb)
    return w_fwd, w_fb


def _forward_slots(kf: int, is_max: int) -> np.ndarray:
    """Order of the kernel columns ``b`` in the forward table of a conv layer.

    A spike reaches consecutive target columns for consecutive taps of equal
    stride, so the taps are stored in that order and one spike adds one
    contiguous run of weights per kernel row: max-pool (stride 1) ``b``
    descending; avg-pool (fused kernel, stride 2) the even ``b`` descending,
    then the odd ``b`` descending.
    """
    if is_max:
        return np.arange(kf - 1, -1, -1)
    return np.concatenate([np.arange(kf - 1 - ((kf - 1) % 2), -1, -2),
                           np.arange(kf - 1 - (kf % 2), -1, -2)])


def _table_size(row) -> int:
    if row[M_KIND] == KIND_CONV:
        return int(row[M_C] * row[M_CIN] * row[M_KF] * row[M_KF])
    return int(row[M_SIZE] * row[M_IN_SIZE])


def _inverse(perm: np.ndarray) -> np.ndarray:
    """``inv`` with ``canonical_vec[inv] == internal_vec``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    return inv


def neuron_biases(net: Network, layout: CoreLayout) -> np.ndarray:
    """Bias of every neuron (int64, flat internal order; 0 for the input)."""
    bias = np.zeros(layout.n_all, np.int64)
    for l in range(1, len(layout.meta)):
        row = layout.meta[l]
        b = net.biases_q[l - 1].astype(np.int64)
        o = layout.offsets[l]
        if row[M_KIND] == KIND_CONV:
            bias[o:o + layout.sizes[l]] = np.tile(b, int(row[M_H] * row[M_W]))
        else:
            bias[o:o + layout.sizes[l]] = b
    return bias


def constants_vector(net: Network, n_phases: int) -> np.ndarray:
    k = net.constants()
    v = np.zeros(C_NCONST, np.int64)
    v[[C_ONE, C_BETA, C_EPS, C_LAM, C_THR_LAM, C_ONE_LAM, C_TRACE_MAX, C_STATE_BITS, C_T1, C_T2,
       C_NPHASES]] = [k.one, k.beta_q, k.eps_q, k.lam_q, k.thr_lam, k.one_lam, k.trace_max,
                      net.widths.state_bits, net.hyper.t1, net.hyper.t2, n_phases]
    return v


# ---------------------------------------------------------------- kernels
@njit(cache=True)
def _scatter_plan(meta, coords, n_all):
    """Per source neuron, its forward scatter into an avg-pool conv layer.

    ``(src, dst, run, n_runs)``: ``n_runs`` contiguous runs of ``run``
    weights, the first at table offset ``src`` added at target offset
    ``dst``; the next rows follow at fixed strides.
    """
    plan = np.zeros((n_all, 4), np.int64)
    for l in range(1, meta.shape[0]):
        row = meta[l]
        if row[M_KIND] != KIND_CONV or row[M_IS_MAX] != 0:
            continue
        in_off, cout = row[M_IN_OFF], row[M_C]
        pad, kf, hout, wout = row[M_PAD], row[M_KF], row[M_H], row[M_W]
        for j in range(in_off, in_off + row[M_IN_SIZE]):
            yp = coords[j, 0] + pad
            xp = coords[j, 1] + pad
            ci = coords[j, 2]
            a0 = yp - 2 * (hout - 1)
            if a0 < 0:
                a0 = yp & 1
            a1 = min(yp, kf - 1)
            b0 = xp - 2 * (wout - 1)
            if b0 < 0:
                b0 = xp & 1
            b1 = min(xp, kf - 1)
            b1 -= (b1 - xp) & 1
            if a1 < a0 or b1 < b0:
                continue
            nb = (b1 - b0) // 2 + 1
            par = b1 & 1
            src_b = (par * ((kf + 1) // 2) + (kf - 1 - b1) // 2) * cout
            dst_b = ((xp - b1) >> 1) * cout
            plan[j, 0] = (ci * kf + a0) * kf * cout + src_b
            plan[j, 1] = ((yp - a0) >> 1) * wout * cout + dst_b
            plan[j, 2] = nb * cout
            plan[j, 3] = (a1 - a0) // 2 + 1
    return plan


@njit(cache=True, inline="always")
def _add_run(acc, dst, w, src, n):
    """``acc[dst:dst+n] += w[src:src+n]``: one contiguous run (vectorised)."""
    a = acc[dst:dst + n]
    b = w[src:src + n]
    for t in range(n):
        a[t] += b[t]


@njit(cache=True, inline="always")
def _add_runs2(acc, dst, w, s1, s2, n):
    """``acc[dst:dst+n] += w[s1:s1+n] + w[s2:s2+n]``: two runs, one pass over ``acc``."""
    a = acc[dst:dst + n]
    b1, b2 = w[s1:s1 + n], w[s2:s2 + n]
    for t in range(n):
        a[t] += b1[t] + b2[t]


@njit(cache=True, inline="always")
def _add_runs4(acc, dst, w, s1, s2, s3, s4, n):
    """``acc[dst:dst+n] +=`` the sum of four runs of ``w``: one pass over ``acc``."""
    a = acc[dst:dst + n]
    b1, b2, b3, b4 = w[s1:s1 + n], w[s2:s2 + n], w[s3:s3 + n], w[s4:s4 + n]
    for t in range(n):
        a[t] += (b1[t] + b2[t]) + (b3[t] + b4[t])


@njit(cache=True, inline="always")
def _add_group(acc, dst, d_step, w, srcs, g, s_step, nr, n):
    """Add ``g`` sources that share their targets: ``nr`` rows of ``n`` weights.

    Row ``r`` of source ``q`` is ``w[srcs[q] + r*s_step:][:n]``, added at
    ``acc[dst + r*d_step:][:n]``.  The spikes of one neuron position (and all
    spikes into an FC layer) share their targets, so their runs are summed
    four at a time before the accumulator is read and written: a quarter of
    the accumulator traffic, which bounds a one-run scatter.  Exact: every
    partial sum is a sum of table entries that reach the same accumulator in
    the same step, so :func:`_table_dtypes`' bound on the accumulator holds
    for it too (the arithmetic is that of the accumulator dtype or wider).
    """
    q = 0
    while q + 4 <= g:
        s1, s2, s3, s4 = srcs[q], srcs[q + 1], srcs[q + 2], srcs[q + 3]
        for r in range(nr):
            o = r * s_step
            _add_runs4(acc, dst + r * d_step, w, s1 + o, s2 + o, s3 + o, s4 + o, n)
        q += 4
    if q + 2 <= g:
        s1, s2 = srcs[q], srcs[q + 1]
        for r in range(nr):
            _add_runs2(acc, dst + r * d_step, w, s1 + r * s_step, s2 + r * s_step, n)
        q += 2
    if q < g:
        s1 = srcs[q]
        for r in range(nr):
            _add_run(acc, dst + r * d_step, w, s1 + r * s_step, n)


@njit(cache=True, inline="always")
def _scatter_forward(meta, coords, plan, l, w_fwd, spk_idx, spk_cnt, u_fwd, cacc, pool_idx,
                     pool_off, srcs):
    """Add the forward weights of layer l-1's spikes into layer l; returns events.

    Only spiking neurons cost work; the loops visit only the kernel taps that
    land inside the target map (no per-tap bounds tests).  The spikes of one
    source position (consecutive in the index list, channel-last layout)
    reach the same targets and are added as one group (:func:`_add_group`);
    ``srcs`` is int64 scratch of at least the largest layer's size.
    """
    row = meta[l]
    in_off, off = row[M_IN_OFF], row[M_OFF]
    n_spk = spk_cnt[l - 1]
    cout = row[M_C]
    wf = row[M_WF_OFF]
    if row[M_KIND] == KIND_FC:
        for k in range(n_spk):
            srcs[k] = wf + (spk_idx[in_off + k] - in_off) * cout
        _add_group(u_fwd, off, 0, w_fwd, srcs, n_spk, 0, 1, cout)
        return n_spk * cout
    pad, kf, hout, wout = row[M_PAD], row[M_KF], row[M_H], row[M_W]
    cin = row[M_CIN]
    taps = 0
    if row[M_IS_MAX] == 0:
        # fused (K+1)^2 kernel, stride 2: one run per kernel row a (rows a step 2)
        s_step = 2 * kf * cout
        d_step = wout * cout
        if cin < GROUP_MIN_CHANNELS:
            for k in range(n_spk):
                j = spk_idx[in_off + k]
                nr = plan[j, 3]
                run = plan[j, 2]
                src = wf + plan[j, 0]
                dst = off + plan[j, 1]
                taps += nr * run
                for r in range(nr):
                    _add_run(u_fwd, dst, w_fwd, src, run)
                    src += s_step
                    dst -= d_step
            return taps
        k = 0
        while k < n_spk:
            j = spk_idx[in_off + k]
            pos_end = j - coords[j, 2] + cin      # first index of the next position
            g = 0
            while k + g < n_spk and spk_idx[in_off + k + g] < pos_end:
                srcs[g] = wf + plan[spk_idx[in_off + k + g], 0]
                g += 1
            nr = plan[j, 3]
            run = plan[j, 2]
            taps += g * nr * run
            _add_group(u_fwd, off + plan[j, 1], -d_step, w_fwd, srcs, g, s_step, nr, run)
            k += g
        return taps
    # max-pool: full-resolution conv, then max over 2x2 with the first argmax
    n_pool = hout * wout * cout
    if n_spk == 0:
        # every conv output is 0: u_fwd stays 0, the first maximum is (0, 0)
        pool_idx[pool_off:pool_off + n_pool] = 0
        return 0
    hc, wc = row[M_HC], row[M_WC]
    co_off = row[M_CACC_OFF]
    cacc[co_off:co_off + hc * wc * cout] = 0
    if cin < GROUP_MIN_CHANNELS:
        for k in range(n_spk):
            j = spk_idx[in_off + k]
            yp = coords[j, 0] + pad
            xp = coords[j, 1] + pad
            ci = coords[j, 2]
            a0 = max(0, yp - hc + 1)
            a1 = min(yp, kf - 1)
            b0 = max(0, xp - wc + 1)
            b1 = min(xp, kf - 1)
            if a1 < a0 or b1 < b0:
                continue
            nb = b1 - b0 + 1
            taps += (a1 - a0 + 1) * nb
            # taps stored with descending b: b1 .. b0 reach the columns xp-b1 .. xp-b0
            src_b = (kf - 1 - b1) * cout
            dst_b = (xp - b1) * cout
            run = nb * cout
            for a in range(a0, a1 + 1):
                src = wf + (ci * kf + a) * kf * cout + src_b
                dst = co_off + (yp - a) * wc * cout + dst_b
                _add_run(cacc, dst, w_fwd, src, run)
    k = n_spk if cin < GROUP_MIN_CHANNELS else 0
    while k < n_spk:
        j = spk_idx[in_off + k]
        pos_end = j - coords[j, 2] + cin      # first index of the next position
        yp = coords[j, 0] + pad
        xp = coords[j, 1] + pad
        a0 = max(0, yp - hc + 1)
        a1 = min(yp, kf - 1)
        b0 = max(0, xp - wc + 1)
        b1 = min(xp, kf - 1)
        # taps stored with descending b: b1 .. b0 reach the columns xp-b1 .. xp-b0
        src_b = (kf - 1 - b1) * cout
        g = 0
        while k + g < n_spk and spk_idx[in_off + k + g] < pos_end:
            ci = coords[spk_idx[in_off + k + g], 2]
            srcs[g] = wf + (ci * kf + a0) * kf * cout + src_b
            g += 1
        k += g
        if a1 < a0 or b1 < b0:
            continue
        nb = b1 - b0 + 1
        taps += g * (a1 - a0 + 1) * nb
        dst = co_off + (yp - a0) * wc * cout + (xp - b1) * cout
        _add_group(cacc, dst, -wc * cout, w_fwd, srcs, g, kf * cout, a1 - a0 + 1, nb * cout)
    for i in range(hout):
        for jj in range(wout):
            c00 = co_off + ((2 * i) * wc + 2 * jj) * cout
            c01 = c00 + cout
            c10 = c00 + wc * cout
            c11 = c10 + cout
            dst = (i * wout + jj) * cout
            v00, v01 = cacc[c00:c00 + cout], cacc[c01:c01 + cout]
            v10, v11 = cacc[c10:c10 + cout], cacc[c11:c11 + cout]
            u_ = u_fwd[off + dst:off + dst + cout]
            p_ = pool_idx[pool_off + dst:pool_off + dst + cout]
            for o in range(cout):
                best = v00[o]
                arg = 0
                if v01[o] > best:
                    best = v01[o]
                    arg = 1
                if v10[o] > best:
                    best = v10[o]
                    arg = 2
                if v11[o] > best:
                    best = v11[o]
                    arg = 3
                u_[o] = best
                p_[o] = arg
    return taps * cout


@njit(cache=True, inline="always")
def _scatter_feedback(meta, coords, l, w_fb, spk_idx, spk_cnt, u_fb, pool_idx, pool_off, srcs):
    """Add layer l's spikes through W_l^T into layer l-1's feedback input.

    As in :func:`_scatter_forward`, spikes with the same targets (FC; the
    channels of one position for avg-pool conv) are added as one group.
    """
    row = meta[l]
    in_off, off = row[M_IN_OFF], row[M_OFF]
    n_spk = spk_cnt[l]
    wb = row[M_WB_OFF]
    if row[M_KIND] == KIND_FC:
        nin = row[M_IN_SIZE]
        for k in range(n_spk):
            srcs[k] = wb + (spk_idx[off + k] - off) * nin
        _add_group(u_fb, in_off, 0, w_fb, srcs, n_spk, 0, 1, nin)
        return n_spk * nin
    cin, hin, win = row[M_CIN], row[M_HIN], row[M_WIN]
    pad, kf, wout, cout = row[M_PAD], row[M_KF], row[M_W], row[M_C]
    taps = 0
    is_max = row[M_IS_MAX]
    if is_max == 0 and cout >= GROUP_MIN_CHANNELS:
        k = 0
        while k < n_spk:
            g0 = spk_idx[off + k]
            pos_end = g0 - coords[g0, 2] + cout
            y0 = 2 * coords[g0, 0] - pad
            x0 = 2 * coords[g0, 1] - pad
            a0 = max(0, -y0)
            a1 = min(kf, hin - y0)
            b0 = max(0, -x0)
            b1 = min(kf, win - x0)
            g = 0
            while k + g < n_spk and spk_idx[off + k + g] < pos_end:
                o = coords[spk_idx[off + k + g], 2]
                srcs[g] = wb + ((o * kf + a0) * kf + b0) * cin
                g += 1
            k += g
            if a1 <= a0 or b1 <= b0:
                continue
            taps += g * (a1 - a0) * (b1 - b0)
            dst = in_off + ((y0 + a0) * win + x0 + b0) * cin
            _add_group(u_fb, dst, win * cin, w_fb, srcs, g, kf * cin, a1 - a0, (b1 - b0) * cin)
        return taps * cin
    for k in range(n_spk):
        g = spk_idx[off + k]
        n = g - off
        y0 = 2 * coords[g, 0] - pad
        x0 = 2 * coords[g, 1] - pad
        o = coords[g, 2]
        if is_max != 0:
            mn = pool_idx[pool_off + n]
            y0 += mn >> 1
            x0 += mn & 1
        a0 = max(0, -y0)
        a1 = min(kf, hin - y0)
        b0 = max(0, -x0)
        b1 = min(kf, win - x0)
        if a1 <= a0 or b1 <= b0:
            continue
        taps += (a1 - a0) * (b1 - b0)
        run = (b1 - b0) * cin
        for a in range(a0, a1):
            src = wb + ((o * kf + a) * kf + b0) * cin
            dst = in_off + ((y0 + a) * win + x0 + b0) * cin
            _add_run(u_fb, dst, w_fb, src, run)
    return taps * cin


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
        s_old, d_old = s_[t], dec_[t]
        new, si, sd = neuron_step(np.int64(uf_[t]), np.int64(ub_[t]), b_[t], one * (t == label),
                                  beta_q, NeuronState(s_old, d_old), align, dyn)
        uf_[t] = 0
        ub_[t] = 0
        sat_in += si
        sat_dec += sd
        active += (new.s != s_old) | (new.dec != d_old)
        dec_[t] = new.dec
        s_[t] = new.s
        q, enc, sat = encode_step(new.s, EncoderState(psi_[t], encp_[t]), dyn)
        sat_psi += sat
        psi_[t] = enc.psi
        encp_[t] = enc.prev
        q_[t] = q
    counts_pl[K_UPDATES] += size
    counts_pl[K_ACTIVE] += active
    counts_pl[K_SAT_INPUT] += sat_in
    counts_pl[K_SAT_DEC] += sat_dec
    counts_pl[K_SAT_PSI] += sat_psi


@njit(cache=True, inline="always")
def _compact(qbuf, q_words, n_off, size, spk_idx):
    """Indices of the spiking neurons of a layer into ``spk_idx[n_off:]``; their count.

    ``q_words`` is ``qbuf`` (int8 0/1) viewed as uint64: eight neurons
    without a spike are skipped with one test (most are silent).
    """
    cnt = 0
    t = n_off
    end = n_off + size
    while t < end and (t & 7) != 0:
        spk_idx[n_off + cnt] = t
        cnt += qbuf[t]
        t += 1
    while t + 8 <= end:
        if q_words[t >> 3] != 0:
            for u in range(t, t + 8):
                spk_idx[n_off + cnt] = u
                cnt += qbuf[u]
        t += 8
    while t < end:
        spk_idx[n_off + cnt] = t
        cnt += qbuf[t]
        t += 1
    return cnt


@njit(cache=True)
def _run_sample(b, meta, coords, plan, consts, w_fwd, w_fb, bias, x_fp, label, reg_lo, reg_hi,
                s, dec, psi, encp, spk_idx, spk_cnt, u_fwd, u_fb, cacc, pool_idx, pool_offs,
                snap_s, snap_dec, snap_psi, snap_encp, snap_idx, snap_cnt,
                qbuf, q_words, nz, srcs, traces, phase_idx, s_free, counts, rec_spk, rec_state):
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
            for l in range(1, n_layers + 1):
                counts[phase, l, K_EVENTS_FWD] += _scatter_forward(
                    meta, coords, plan, l, w_fwd, spk_idx, spk_cnt, u_fwd, cacc, pool_idx,
                    pool_offs[l], srcs)
            for l in range(2, n_layers + 1):
                counts[phase, l - 1, K_EVENTS_FB] += _scatter_feedback(
                    meta, coords, l, w_fb, spk_idx, spk_cnt, u_fb, pool_idx, pool_offs[l], srcs)
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
def _run_batch(meta, coords, plan, consts, w_fwd, w_fb, bias, x_fp, labels, reg_lo, reg_hi,
               u_proto, c_proto, pool_offs, n_pool, traces, phase_idx, s_free, counts, rec_spk,
               rec_state):
    n_batch = x_fp.shape[0]
    n_all = bias.shape[0]
    n_l1 = meta.shape[0]
    n0 = meta[0, M_SIZE]
    for b in prange(n_batch):
        # per-sample scratch, allocated once per sample (never per step)
        s = np.zeros(n_all, np.int64)
        dec = np.zeros(n_all, np.int64)
        psi = np.zeros(n_all, np.int64)
        encp = np.zeros(n_all, np.int64)
        spk_idx = np.zeros(n_all, np.int32)
        spk_cnt = np.zeros(n_l1, np.int64)
        u_fwd = np.zeros_like(u_proto)
        u_fb = np.zeros_like(u_proto)
        cacc = np.zeros_like(c_proto)
        pool_idx = np.zeros(n_pool, np.int8)
        snap_s = np.zeros(n_all, np.int64)
        snap_dec = np.zeros(n_all, np.int64)
        snap_psi = np.zeros(n_all, np.int64)
        snap_encp = np.zeros(n_all, np.int64)
        snap_idx = np.zeros(n_all, np.int32)
        snap_cnt = np.zeros(n_l1, np.int64)
        qbuf = np.zeros((n_all + 7) // 8 * 8, np.int8)
        q_words = qbuf.view(np.uint64)
        nz = np.zeros(n0, np.int64)
        srcs = np.zeros(n_all, np.int64)
        rs = rec_spk[b] if rec_spk.shape[0] > 0 else rec_spk[0:0, 0]
        rst = rec_state[b] if rec_state.shape[0] > 0 else rec_state[0:0, 0]
        _run_sample(b, meta, coords, plan, consts, w_fwd, w_fb, bias, x_fp[b], labels[b],
                    reg_lo, reg_hi,
                    s, dec, psi, encp, spk_idx, spk_cnt, u_fwd, u_fb, cacc, pool_idx, pool_offs,
                    snap_s, snap_dec, snap_psi, snap_encp, snap_idx, snap_cnt,
                    qbuf, q_words, nz, srcs, traces[b], phase_idx[b], s_free[b], counts[b], rs, rst)


# ---------------------------------------------------------------- host API
@dataclass
class BatchResult:
    """What one batch produced.  Arrays are per sample (axis 0).

    ``traces``: int32 ``(B, 2, n_all)`` trace registers after +beta / -beta
    (internal order); ``pool_idx``: int8 ``(B, 2, n_pool)`` max-pool argmax at
    the end of each nudged phase; ``s_free``: int64 ``(B, classes)`` output
    state after the free phase; ``predictions``: int64 ``(B,)``; ``counts``:
    int64 ``(B, 3, L+1, N_COUNTS)``; ``rec_spikes`` uint8 ``(B, steps, n_all)``
    and ``rec_state`` int64 ``(B, 3, 4, n_all)`` only when recording.
    """

    traces: np.ndarray
    pool_idx: np.ndarray
    s_free: np.ndarray
    predictions: np.ndarray
    counts: np.ndarray
    rec_spikes: np.ndarray | None = None
    rec_state: np.ndarray | None = None


class CoreNet:
    """A :class:`Network` prepared for the Numba kernels."""

    def __init__(self, net: Network):
        self.net = net
        self.layout = CoreLayout.build(net)
        self._maps = pack_index_maps(net, self.layout)
        self.refresh()

    def refresh(self) -> None:
        """Re-derive the kernel tables after the integer parameters changed."""
        self.w_fwd, self.w_fb = pack_weights(self.net, self.layout, self._maps)
        self.bias = neuron_biases(self.net, self.layout)
        meta = self.layout.meta
        offs = np.zeros(len(meta), np.int64)
        total = 0
        for l in range(1, len(meta)):
            offs[l] = total
            if meta[l, M_KIND] == KIND_CONV and meta[l, M_IS_MAX]:
                total += int(meta[l, M_SIZE])
        self.pool_offs, self.n_pool = offs, max(total, 1)

    def run(self, x_fp: np.ndarray, labels: np.ndarray | None = None, train: bool = True,
            record: bool = False) -> BatchResult:
        """Simulate a batch: free phase only (``train=False``) or all three.

        ``x_fp``: int64 ``(B, N0)`` quantised pixels in canonical (C,H,W) order;
        ``labels``: int ``(B,)`` (needed for training).
        """
        lay = self.layout
        n_batch = x_fp.shape[0]
        x_int = lay.to_internal(0, np.ascontiguousarray(x_fp, dtype=np.int64))
        if labels is None:
            labels = np.full(n_batch, -1, np.int64)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        n_phases = 3 if train else 1
        consts = constants_vector(self.net, n_phases)
        h = self.net.hyper
        n_steps = h.t1 + (2 * h.t2 if train else 0)
        n_l1 = len(lay.meta)
        traces = np.zeros((n_batch, 2, lay.n_all), np.int32)
        phase_idx = np.zeros((n_batch, 2, self.n_pool), np.int8)
        s_free = np.zeros((n_batch, lay.sizes[-1]), np.int64)
        counts = np.zeros((n_batch, 3, n_l1, N_COUNTS), np.int64)
        if record:
            rec_spk = np.zeros((n_batch, n_steps, lay.n_all), np.uint8)
            rec_state = np.zeros((n_batch, 3, 4, lay.n_all), np.int64)
        else:
            rec_spk = np.zeros((0, 1, 1), np.uint8)
            rec_state = np.zeros((0, 1, 1, 1), np.int64)
        reg_lo, reg_hi = nx.REG_MIN, nx.REG_MAX
        _run_batch(lay.meta, lay.coords, lay.plan, consts, self.w_fwd, self.w_fb, self.bias,
                   x_int, labels, reg_lo, reg_hi, np.zeros(lay.n_all, lay.acc_dtype),
                   np.zeros(lay.n_cacc, lay.acc_dtype), self.pool_offs, self.n_pool, traces,
                   phase_idx, s_free, counts, rec_spk, rec_state)
        preds = np.argmax(s_free, axis=1)
        return BatchResult(traces, phase_idx, s_free, preds, counts,
                           rec_spk if record else None, rec_state if record else None)

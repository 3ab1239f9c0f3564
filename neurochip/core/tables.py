"""The kernels' tables derived from a network's integers: weights, biases, constants.

Re-derived by :meth:`~neurochip.core.CoreNet.refresh` after every update: the conv
tables with one gather per entry through index maps, the fc tables as the weight
matrix with its columns in internal order and its transpose, copied in tiles; both
depend only on the architecture.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..kernel_cache import drop_stale
from ..network import Network
from ..pooling import fused_kernel
from .layout import CoreLayout
from .meta import (C_BETA, C_EPS, C_LAM, C_NCONST, C_NPHASES, C_ONE, C_ONE_LAM, C_STATE_BITS, C_T1,
                   C_T2, C_THR_LAM, C_TRACE_MAX, KIND_CONV, M_C, M_CIN, M_H, M_IN_SIZE, M_IS_MAX,
                   M_KF, M_KIND, M_SIZE, M_W, M_WB_OFF, M_WF_OFF)

drop_stale(__file__)   # _gather_sum is cached: recompile when an inlined source changes


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


def pack_index_maps(net: Network, layout: CoreLayout) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per layer, where each entry of the forward / feedback table comes from.

    conv: ``(idx_fwd, idx_fb)``, int32 ``(1, n)``: table entry ``t`` is
    ``_kernel_source(net, layout, l).flat[idx[0, t]]``, forward as ``[ci, a,
    slot(b), co]`` (:func:`_forward_slots`; the fused kernel for avg-pool, the
    plain one for max-pool), feedback ``[co, a, b, ci]``.  fc: ``(canonical,
    None)``, ``canonical`` int64 ``(in,)`` the canonical index of each internal
    input: the feedback table is ``W[:, canonical]`` (out, in), the forward table
    its transpose (in, out) (:func:`_pack_fc`).  The maps depend only on the
    architecture, so :meth:`CoreNet.refresh` re-packs the tables without
    deriving them again.
    """
    meta = layout.meta
    maps = []
    for l in range(1, len(meta)):
        row = meta[l]
        if row[M_KIND] == KIND_CONV:
            shape = _kernel_source(net, layout, l).shape
            ids = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
            slots = _forward_slots(shape[-1], row[M_IS_MAX])
            fwd = ids.transpose(1, 2, 3, 0)[:, :, slots]    # ci, a, slot, co
            fb = ids.transpose(0, 2, 3, 1)                   # co, a, b, ci
            maps.append((fwd.reshape(1, -1).astype(np.int32), fb.reshape(1, -1).astype(np.int32)))
        else:
            maps.append((_inverse(layout.perm[l - 1]).astype(np.int64), None))
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


FC_TILE = 64   # the tile side of _pack_fc's transpose: a tile's rows of both sides stay in L1


@njit(cache=True)
def _pack_fc(w, canonical, t_fwd, off_fwd, t_fb, off_fb):
    """The fc tables of ``w`` ``(out, in)``: feedback (out, in) and forward (in, out).

    Internal input ``i`` is canonical input ``canonical[i]`` (int64 ``(in,)``):
    ``t_fb[off_fb + o*in + i] = t_fwd[off_fwd + i*out + o] = w[o, canonical[i]]``.
    The feedback rows are gathered row by row, then transposed into the
    forward table in ``FC_TILE``-square tiles: a gather walking the forward
    table in its own order through ``w`` missed the cache on every entry (28 ms
    per update for the paper network's 6,400 x 512 layer; docs/speed.md).
    """
    n_out, n_in = w.shape
    for o in range(n_out):
        row = w[o]
        fb = t_fb[off_fb + o * n_in:off_fb + (o + 1) * n_in]
        for i in range(n_in):
            fb[i] = row[canonical[i]]
    for i0 in range(0, n_in, FC_TILE):
        for o0 in range(0, n_out, FC_TILE):
            for i in range(i0, min(i0 + FC_TILE, n_in)):
                fwd = t_fwd[off_fwd + i * n_out:off_fwd + (i + 1) * n_out]
                for o in range(o0, min(o0 + FC_TILE, n_out)):
                    fwd[o] = t_fb[off_fb + o * n_in + i]


def pack_weights(net: Network, layout: CoreLayout,
                 maps: list | None = None) -> tuple[np.ndarray, ...]:
    """Forward- and feedback-scatter weight tables, flat: ``(w_fwd, w_fb, w_fc_fwd, w_fc_fb)``.

    The conv layers' tables (``layout.w_dtype``) and the fc layers' tables
    (``layout.fc_dtype``), each layer at its ``M_WF_OFF`` / ``M_WB_OFF`` in
    its kind's tables.  The layouts are those of :func:`pack_index_maps`
    (pass its result as ``maps`` to skip re-deriving them).
    """
    meta = layout.meta
    if maps is None:
        maps = pack_index_maps(net, layout)
    conv = [l for l in range(1, len(meta)) if meta[l, M_KIND] == KIND_CONV]
    fc = [l for l in range(1, len(meta)) if meta[l, M_KIND] != KIND_CONV]
    w_fwd = np.zeros(sum(_table_size(meta[l]) for l in conv), layout.w_dtype)
    w_fc_fwd = np.zeros(sum(_table_size(meta[l]) for l in fc), layout.fc_dtype)
    w_fb, w_fc_fb = np.zeros_like(w_fwd), np.zeros_like(w_fc_fwd)
    for l in conv:
        w = np.ascontiguousarray(_kernel_source(net, layout, l)).reshape(-1)
        idx_fwd, idx_fb = maps[l - 1]
        _gather_sum(w_fwd, meta[l, M_WF_OFF], w, idx_fwd)
        _gather_sum(w_fb, meta[l, M_WB_OFF], w, idx_fb)
    for l in fc:
        _pack_fc(np.ascontiguousarray(net.weights_q[l - 1]), maps[l - 1][0],
                 w_fc_fwd, meta[l, M_WF_OFF], w_fc_fb, meta[l, M_WB_OFF])
    return w_fwd, w_fb, w_fc_fwd, w_fc_fb


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
    """Bias of every neuron (int32: at most 24 bits; flat internal order; 0 for the input)."""
    bias = np.zeros(layout.n_all, np.int32)
    for l in range(1, len(layout.meta)):
        row = layout.meta[l]
        b = net.biases_q[l - 1].astype(np.int32)
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

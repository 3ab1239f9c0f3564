"""Where a sample's neurons live in the core's flat vector, and the tables' dtypes.

A sample's neurons of all layers (input = layer 0) live in one flat vector; conv
maps are stored channel-last (``H, W, C``) so that one spike adds a contiguous row of
weights.  :class:`CoreLayout` converts to and from PyTorch's ``C, H, W`` order and
holds the per-layer ``meta`` table (columns in :mod:`.meta`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import Network
from ..pooling import kernel_side, weights_per_entry
from .meta import (KIND_CONV, KIND_FC, KIND_INPUT, M_C, M_CACC_OFF, M_CIN, M_FB_MULT, M_H, M_HC,
                   M_HIN, M_IN_OFF, M_IN_SIZE, M_IS_MAX, M_K, M_KF, M_KIND, M_NCOLS, M_OFF, M_PAD,
                   M_SH_FB, M_SH_FWD, M_SH_OUT, M_SIZE, M_W, M_WB_OFF, M_WC, M_WF_OFF, M_WIN)
from .scatter import _scatter_plan


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
    w_dtype: type = np.int32   # conv weight tables: int16 when every entry fits
    fc_dtype: type = np.int32  # fc weight tables (plain weights): int8 up to 8-bit weights
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
        wf_off = wb_off = fc_off = cacc_off = 0
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
            if spec.kind == "conv":     # offsets into the conv tables
                row[M_WF_OFF], row[M_WB_OFF] = wf_off, wb_off
                wf_off += n_w
                wb_off += n_w
            else:                       # offsets into the fc tables
                row[M_WF_OFF], row[M_WB_OFF] = fc_off, fc_off
                fc_off += n_w
        # (y, x, channel) of every neuron of a map, so that kernels need no division
        coords = np.zeros((int(sum(sizes)), 3), np.int32)
        for l, shp in enumerate(shapes):
            if len(shp) == 3:
                c, h, w = shp
                y, x, ci = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
                coords[offsets[l]:offsets[l] + sizes[l]] = np.stack(
                    [y.ravel(), x.ravel(), ci.ravel()], axis=1)
        w_dtype, fc_dtype, acc_dtype = _table_dtypes(meta, net.widths.weight_bits)
        plan = _scatter_plan(meta, coords, int(sum(sizes)))
        return CoreLayout(meta, offsets, sizes, int(sum(sizes)), max(cacc_off, 1), perm,
                          coords, plan, w_dtype, fc_dtype, acc_dtype)

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


def _table_dtypes(meta: np.ndarray, weight_bits: int) -> tuple[type, type, type]:
    """Narrowest exact dtypes of the conv and fc weight tables and the accumulators.

    A table entry is a weight (``|w| <= 2**(Bw-1)``; fc tables and max-pool
    conv) or, for avg-pool conv, a sum of four.  The fc tables hold plain
    weights, so up to 8-bit weights they are int8: half the bytes of the
    largest tables, whose rows every spike reads (docs/speed.md).  An
    accumulator receives each table entry of its layer at most once per step (every source neuron spikes at most once and reaches a
    target through one entry), so ``|u| <= fan_in * max|entry|``; int32 is
    used when that bound fits, else int64 (the contract's width).
    """
    w_max = 1 << (weight_bits - 1)
    entry_max = w_max
    acc_max = 0
    for l in range(1, len(meta)):
        row = meta[l]
        if row[M_KIND] == KIND_CONV:
            e = w_max * weights_per_entry(bool(row[M_IS_MAX]))
            taps = int(row[M_KF]) ** 2
            fan_fwd, fan_fb = int(row[M_CIN]) * taps, int(row[M_C]) * taps
            if row[M_IS_MAX]:   # the full-resolution conv sums before the max
                fan_fwd = int(row[M_CIN]) * int(row[M_K]) ** 2
            entry_max = max(entry_max, e)
        else:
            e = w_max
            fan_fwd, fan_fb = int(row[M_IN_SIZE]), int(row[M_SIZE])
        acc_max = max(acc_max, e * fan_fwd, e * fan_fb)
    w_dtype = np.int16 if entry_max <= (1 << 15) else np.int32
    fc_dtype = np.int8 if w_max <= (1 << 7) else np.int16 if w_max <= (1 << 15) else np.int32
    acc_dtype = np.int32 if acc_max < (1 << 31) else np.int64
    return w_dtype, fc_dtype, acc_dtype


def is_max_pool_layer(net: Network, layer: int) -> bool:
    """Whether state layer ``layer`` (1..L; 0 is the input) is a max-pooled conv layer."""
    return layer > 0 and net.arch.layers[layer - 1].kind == "conv" and net.hyper.pool == "max"


def max_pool_slots(net: Network) -> tuple[np.ndarray, int]:
    """Layout of the max-pool argmax slots in ``BatchResult.pool_idx``.

    Returns
    -------
    offsets : int64 ``(L+1,)``
        Start of layer ``l``'s slots (one per pooled neuron, internal order).
    n_pool : int
        Slots per sample and phase (at least 1, so the array is never empty).
    """
    sizes = net.arch.layer_sizes()
    offsets = np.zeros(len(sizes), np.int64)
    total = 0
    for l in range(1, len(sizes)):
        offsets[l] = total
        if is_max_pool_layer(net, l):
            total += int(sizes[l])
    return offsets, max(total, 1)

"""Pure-NumPy geometry of the Lava mapping (no Lava import).

Layouts.  neurochip's canonical order is PyTorch's ``(C, H, W)``.  Lava's
``Conv`` works on ``(W, H, C)`` ("WHC") arrays, so every map layer (the input
and each conv layer) lives in Lava as a ``(W, H, C)`` Process; FC layers are
flat ``(n,)``.  A flat index of a map layer in Lava is the C-order ravel of
``(W, H, C)``: ``(x * H + y) * C + c``.

Edges.  Every edge between neighbouring layers is one integer matrix ``M``
(rows: receiving neurons, columns: sending neurons, Lava flat order) with
``u_fwd_l = M_l q_{l-1}`` and ``u_fb_{l-1} = M_l^T q_l``: the exact transpose.
For an avg-pool conv layer ``M`` is the stride-2 correlation with the fused
``(K+1)x(K+1)`` kernel (conv followed by the 2x2 *sum*), for an FC layer it is
``W`` with its columns permuted from CHW to WHC order.

Digits.  Lava's bit-accurate ``Dense``/``Sparse`` hold 8-bit mixed-sign
weights as even 9-bit values and drop the LSB (lava.md §3, P4).  A weight ``w``
of any width is written as signed base-256 digits ``w = sum_k d_k 256^k``,
``d_k`` in ``[-128, 127]``; digit ``k`` is a connection process with weights
``2 d_k`` and ``weight_exp = 8k - 1``, whose output ``(sum 2 d_k q) << (8k-1)``
(or ``>> 1`` for ``k = 0``) is exact.  All digits feed the same InPort, which
sums them.  The number of digits depends only on the bit width, so weight
updates never need more processes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from neurochip import numerics as nx
from neurochip.errors import UserError
from neurochip.network import Network
from neurochip.pooling import (fused_kernel, kernel_side,  # noqa: F401  (fused_kernel: re-exported)
                               stride2_synapses)

DIGIT_BITS = 8
DIGIT_LO, DIGIT_HI = -128, 127
LAVA_CONV_BITS = 24          # Lava's Conv wraps its accumulator at 24 bits signed
INT32_MAX = 2 ** 31 - 1


class MappingError(UserError):
    """The network (or an option) has no exact Lava mapping."""


# ----------------------------------------------------------------- orders
def chw_of_whc(shape_chw) -> np.ndarray:
    """``perm`` with ``canonical[perm] == lava_flat``: CHW index of each WHC position."""
    c, h, w = shape_chw
    return np.arange(c * h * w).reshape(c, h, w).transpose(2, 1, 0).ravel()


def to_lava(values: np.ndarray, shape) -> np.ndarray:
    """Canonical ``(..., N)`` (CHW flat) -> Lava layout ``(..., W, H, C)`` or ``(..., n)``."""
    values = np.asarray(values)
    lead = values.shape[:-1]
    if len(shape) == 3:
        c, h, w = shape
        return np.moveaxis(values.reshape(lead + (c, h, w)), (-3, -2, -1), (-1, -2, -3))
    return values.reshape(lead + tuple(shape))


def to_canonical(values: np.ndarray, shape) -> np.ndarray:
    """Lava layout ``(..., W, H, C)`` or ``(..., n)`` -> canonical ``(..., N)`` (CHW flat)."""
    values = np.asarray(values)
    if len(shape) == 3:
        lead = values.shape[:-3]
        return np.moveaxis(values, (-1, -2, -3), (-3, -2, -1)).reshape(lead + (-1,))
    lead = values.shape[:-1]
    return values.reshape(lead + (-1,))


def lava_shape(shape) -> tuple[int, ...]:
    """Process shape of a layer with canonical state shape ``shape``."""
    return (shape[2], shape[1], shape[0]) if len(shape) == 3 else (int(shape[0]),)


# ----------------------------------------------------------------- kernels
def lava_conv_weight(fused: np.ndarray) -> np.ndarray:
    """Lava ``Conv`` weight ``(Co, KW, KH, Ci)``: flipped (true convolution), WHC."""
    return np.ascontiguousarray(fused[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


@dataclass(frozen=True)
class ConvGeometry:
    """A fused stride-2 correlation between two map layers (canonical shapes)."""

    cin: int
    hin: int
    win: int
    cout: int
    hout: int
    wout: int
    kf: int
    pad: int
    stride: int = 2

    def structure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every synapse ``(row, col, kernel_index)`` in Lava flat (WHC) orders.

        ``row`` = receiving ``(c, r, o)``, ``col`` = sending ``(x, y, i)`` with
        ``y = 2r + a - P``, ``x = 2c + b - P`` inside the map, and
        ``kernel_index`` the flat index of ``wf[o, i, a, b]``.  Synapses are
        structural: they exist whatever their current weight.
        """
        o, r, c, i, y, x, a, b = stride2_synapses(self.cin, self.hin, self.win, self.cout,
                                                  self.hout, self.wout, self.kf, self.pad,
                                                  self.stride)
        row = (c * self.hout + r) * self.cout + o
        col = (x * self.hin + y) * self.cin + i
        kidx = ((o * self.cin + i) * self.kf + a) * self.kf + b
        order = np.lexsort((col, row))
        return row[order], col[order], kidx[order]

    def matrix(self, fused: np.ndarray) -> csr_matrix:
        """``M`` (N_out x N_in, int64 csr) with ``M @ q_whc == conv(q)_whc``."""
        row, col, kidx = self.structure()
        n_out = self.cout * self.hout * self.wout
        n_in = self.cin * self.hin * self.win
        return csr_matrix((np.asarray(fused, np.int64).ravel()[kidx], (row, col)),
                          shape=(n_out, n_in))


# ------------------------------------------------------------------ digits
def n_digits(lo: int, hi: int | None = None) -> int:
    """Signed base-256 digits needed for every integer in ``[lo, hi]``.

    ``n`` digits span ``[-128 (256^n - 1)/255, 127 (256^n - 1)/255]``; with one
    argument the range is ``[-lo, lo]``.
    """
    if hi is None:
        lo, hi = -lo, lo
    n, top, bottom = 1, DIGIT_HI, DIGIT_LO
    while top < hi or bottom > lo:
        n += 1
        top = top * 256 + DIGIT_HI
        bottom = bottom * 256 + DIGIT_LO
    return n


def split_digits(values: np.ndarray, n: int) -> list[np.ndarray]:
    """``values == sum_k digits[k] * 256**k`` with every digit in ``[-128, 127]``."""
    rest = np.asarray(values, np.int64).copy()
    out = []
    for _ in range(n):
        d = ((rest + 128) & 255) - 128
        out.append(d)
        rest = (rest - d) >> DIGIT_BITS
    if np.any(rest != 0):
        raise MappingError(f"weights need more than {n} digits of 8 bits")
    return out


def digit_weight_exp(k: int) -> int:
    """``weight_exp`` of digit ``k`` (its weights are passed as ``2 d``)."""
    return DIGIT_BITS * k - 1


# ------------------------------------------------------------------- edges
@dataclass
class EdgeSpec:
    """Layer ``l-1 -> l`` (forward) and its transpose ``l -> l-1`` (feedback).

    ``kind``: 'conv' (avg-pool conv layer) or 'fc'.  ``geometry`` for conv;
    ``perm`` (fc after a map layer) maps WHC positions to CHW columns.
    ``value_range``: ``(lo, hi)`` of any entry a weight of the layer's width can give.
    """

    layer: int
    kind: str
    src_shape: tuple
    dst_shape: tuple
    geometry: ConvGeometry | None
    perm: np.ndarray | None
    value_range: tuple

    @property
    def value_bound(self) -> int:
        """The largest |entry|."""
        return max(-self.value_range[0], self.value_range[1])

    @property
    def n_digits(self) -> int:
        """8-bit digit synapses per entry in Dense/Sparse."""
        return n_digits(*self.value_range)

    def kernel(self, net: Network) -> np.ndarray:
        """Fused kernel (conv) or the canonical weight matrix (fc), int64."""
        w = np.asarray(net.weights_q[self.layer - 1], np.int64)
        return fused_kernel(w) if self.kind == "conv" else w

    def matrix(self, net: Network) -> np.ndarray | csr_matrix:
        """``M`` in Lava flat orders (dense int64 for fc, csr for conv)."""
        if self.kind == "conv":
            return self.geometry.matrix(self.kernel(net))
        w = self.kernel(net)
        return w[:, self.perm] if self.perm is not None else w

    def structure_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Synapses per sending neuron (fan-out forward) and per receiving neuron (fan-in)."""
        n_in = int(np.prod(self.src_shape))
        n_out = int(np.prod(self.dst_shape))
        if self.kind == "fc":
            return np.full(n_in, n_out, np.int64), np.full(n_out, n_in, np.int64)
        row, col, _ = self.geometry.structure()
        return (np.bincount(col, minlength=n_in).astype(np.int64),
                np.bincount(row, minlength=n_out).astype(np.int64))

    def max_input(self) -> int:
        """Bound of |M q| for binary q (worst case of the weight range)."""
        _, fan_in = self.structure_counts()
        if self.kind == "conv":
            k = self.geometry.kf - 1
            per_row = self.geometry.cin * k * k * 4      # each weight enters the fused kernel 4x
            return int(per_row * (self.value_bound // 4))
        return int(fan_in.max()) * self.value_bound


def edges(net: Network) -> list[EdgeSpec]:
    """One :class:`EdgeSpec` per layer 1..L (avg-pool conv and fc only)."""
    arch = net.arch
    if net.hyper.pool != "avg":
        raise MappingError("pool='max' has no exact Lava mapping here: its forward edge takes "
                           "a max over the 2x2 conv outputs and its feedback routes through the "
                           "argmax of the same step, which no Lava connection computes; use "
                           "--pool avg")
    shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
    w_lo, w_hi = nx.signed_range.py_func(net.widths.weight_bits)
    out = []
    for l, spec in enumerate(arch.layers, start=1):
        src, dst = shapes[l - 1], shapes[l]
        if spec.kind == "conv":
            geo = ConvGeometry(src[0], src[1], src[2], dst[0], dst[1], dst[2],
                               kernel_side(spec.kernel, False), spec.padding)
            out.append(EdgeSpec(l, "conv", src, dst, geo, None, (4 * w_lo, 4 * w_hi)))
        else:
            perm = chw_of_whc(src) if len(src) == 3 else None
            out.append(EdgeSpec(l, "fc", src, dst, None, perm, (w_lo, w_hi)))
    return out

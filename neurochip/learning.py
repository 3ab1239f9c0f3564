"""The on-chip EP learning rule: trace products, LR scaling, stochastic rounding.

After the +beta and -beta phases every neuron has latched its activation into
a trace register (:func:`neurochip.numerics.trace_latch`).  A synapse's update
uses only its pre and post traces (docs/numerics.md §6)::

    G[o, i]  = sum_b ( post+_o pre+_i - post-_o pre-_i )        (exact, int64)
    dw       = stochastic_shift(G * M_l, K_l, random_bits(seed, update, 2l, idx))
    w       <- saturate(w + dw, -2**(B-1), 2**(B-1) - 1)

For a conv layer the post trace is brought back to pre-pool resolution (the
nearest-neighbour copy for avg-pool, the unpool at that phase's argmax for
max-pool) and correlated with the zero-padded pre map, summed over positions.
Biases use ``Gb[o] = sum (post+ - post-)`` over batch and pooled positions.

The contrastive sums are formed in float64 only where every partial sum is an
integer below 2**53 (asserted), which makes them exact and BLAS-fast.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from . import numerics as nx
from .network import Network

EXACT_FLOAT64 = 2 ** 53


@dataclass
class LayerTraces:
    """Canonical-order traces of one layer for both nudged phases.

    ``plus``/``minus``: int64 ``(B, *state_shape)``; ``idx_plus``/``idx_minus``:
    int8 max-pool argmax ``(B, C, H, W)`` (``m*2+n``) or None.
    """

    plus: np.ndarray
    minus: np.ndarray
    idx_plus: np.ndarray | None = None
    idx_minus: np.ndarray | None = None


def _exact_dot(a: np.ndarray, b: np.ndarray, axes, bound: float) -> np.ndarray:
    """Integer tensordot through float64, valid because ``bound < 2**53``."""
    if bound >= EXACT_FLOAT64:
        raise OverflowError(f"contrastive sum bound {bound:.3g} exceeds 2**53")
    out = np.tensordot(a.astype(np.float64), b.astype(np.float64), axes=axes)
    return out.astype(np.int64)


def upsample_post(post: np.ndarray, conv_hw: tuple[int, int], idx: np.ndarray | None) -> np.ndarray:
    """Post traces ``(B, C, H, W)`` at pre-pool resolution ``(B, C, Hc, Wc)``.

    ``idx is None``: nearest-neighbour copy to all four positions; else the
    unpool to the argmax ``m*2+n``.  Rows/cols dropped by floor pooling get 0.
    """
    bsz, c, h, w = post.shape
    hc, wc = conv_hw
    g = np.zeros((bsz, c, hc, wc), np.int64)
    for m in (0, 1):
        for n in (0, 1):
            if idx is None:
                g[:, :, m:2 * h:2, n:2 * w:2] = post
            else:
                g[:, :, m:2 * h:2, n:2 * w:2] = np.where(idx == 2 * m + n, post, 0)
    return g


def contrastive_conv(pre: LayerTraces, post: LayerTraces, kernel: int, padding: int,
                     conv_hw: tuple[int, int], trace_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, Gb)`` of a conv layer: ``G (Co, Ci, K, K)`` and ``Gb (Co,)``, int64."""
    hc, wc = conv_hw
    grads = None
    for sign, pre_t, post_t, idx in ((1, pre.plus, post.plus, post.idx_plus),
                                     (-1, pre.minus, post.minus, post.idx_minus)):
        g = upsample_post(post_t, conv_hw, idx)
        pp = np.pad(pre_t, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        bound = 2.0 * g.shape[0] * hc * wc * trace_max * trace_max
        part = np.zeros((g.shape[1], pp.shape[1], kernel, kernel), np.int64)
        for u in range(kernel):
            for v in range(kernel):
                win = pp[:, :, u:u + hc, v:v + wc]
                part[:, :, u, v] = _exact_dot(g, win, ([0, 2, 3], [0, 2, 3]), bound)
        grads = sign * part if grads is None else grads + sign * part
    gb = (post.plus.astype(np.int64) - post.minus).sum(axis=(0, 2, 3))
    return grads, gb


def contrastive_fc(pre: LayerTraces, post: LayerTraces, trace_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, Gb)`` of an FC layer: ``G (out, in)`` and ``Gb (out,)``, int64."""
    bsz = post.plus.shape[0]
    pre_p = pre.plus.reshape(bsz, -1)
    pre_m = pre.minus.reshape(bsz, -1)
    bound = 2.0 * bsz * trace_max * trace_max
    g = (_exact_dot(post.plus, pre_p, ([0], [0]), bound)
         - _exact_dot(post.minus, pre_m, ([0], [0]), bound))
    gb = (post.plus.astype(np.int64) - post.minus).sum(axis=0)
    return g, gb


@njit(cache=True, parallel=True)
def apply_update(params, grads, mantissa, shift, seed, update, stream, lo, hi):
    """``params += stochastic_shift(grads * mantissa, shift, rnd)`` with saturation.

    ``params`` int32 flat (modified in place), ``grads`` int64 flat.  Returns
    ``(saturations, changed)``.  Each index draws its own counter-based random
    word, so the result does not depend on the thread count.
    """
    n = params.shape[0]
    sat = np.zeros(n, np.int64)
    chg = np.zeros(n, np.int64)
    for i in prange(n):
        gi = grads[i]
        if gi == 0:
            continue
        rnd = nx.random_bits(seed, update, stream, i)
        delta = nx.stochastic_shift(gi * mantissa, shift, rnd)
        new = params[i] + delta
        new_s = nx.saturate(new, lo, hi)
        sat[i] = new_s != new
        chg[i] = new_s != params[i]
        params[i] = new_s
    return sat.sum(), chg.sum()


@dataclass
class UpdateStats:
    """Per layer: learning-rule products, weights changed, saturations."""

    products: np.ndarray
    weight_writes: np.ndarray
    weight_saturations: np.ndarray
    bias_saturations: np.ndarray


def contrastive(net: Network, traces: list[LayerTraces]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(G_l, Gb_l)]`` for l = 1..L from per-layer traces (index 0 = input)."""
    arch = net.arch
    tmax = (1 << net.widths.trace_bits) - 1
    out = []
    for l, spec in enumerate(arch.layers, start=1):
        if spec.kind == "conv":
            _, hc, wc = arch.conv_shape(l - 1)
            out.append(contrastive_conv(traces[l - 1], traces[l], spec.kernel, spec.padding,
                                        (hc, wc), tmax))
        else:
            out.append(contrastive_fc(traces[l - 1], traces[l], tmax))
    return out


def update_network(net: Network, grads: list[tuple[np.ndarray, np.ndarray]]) -> UpdateStats:
    """Apply one EP update to ``net`` in place and advance its update counter."""
    consts = net.constants()
    n = net.arch.n_layers
    stats = UpdateStats(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                        np.zeros(n, np.int64))
    w_lo, w_hi = consts.w_range
    b_lo, b_hi = consts.b_range
    for l in range(n):
        g, gb = grads[l]
        lc = consts.layers[l]
        w = net.weights_q[l].reshape(-1)
        sat, chg = apply_update(w, np.ascontiguousarray(g.reshape(-1), np.int64), lc.lr_w[0],
                                lc.lr_w[1], net.seed, net.updates, 2 * (l + 1), w_lo, w_hi)
        stats.weight_saturations[l] = sat
        stats.weight_writes[l] = chg
        b = net.biases_q[l].reshape(-1)
        sat_b, _ = apply_update(b, np.ascontiguousarray(gb, np.int64), lc.lr_b[0], lc.lr_b[1],
                                net.seed, net.updates, 2 * (l + 1) + 1, b_lo, b_hi)
        stats.bias_saturations[l] = sat_b
    net.updates += 1
    return stats


def learning_products(net: Network, batch: int) -> np.ndarray:
    """Trace products the rule forms per layer for one update (both phases)."""
    arch = net.arch
    out = np.zeros(arch.n_layers, np.int64)
    for l, spec in enumerate(arch.layers):
        shape = arch.weight_shapes()[l]
        if spec.kind == "conv":
            _, hc, wc = arch.conv_shape(l)
            c, h, w = arch.state_shapes()[l]
            pos = h * w if net.hyper.pool == "max" else 4 * h * w
            out[l] = 2 * batch * int(np.prod(shape)) * pos
        else:
            out[l] = 2 * batch * int(np.prod(shape))
    return out

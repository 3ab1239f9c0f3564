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

import contextlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import numerics as nx
from .bounds import check_exact, contrastive_sum_bound
from .kernel_cache import drop_stale
from .network import Network

drop_stale(__file__)   # kernels inline numerics.py: recompile when it changes

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


_blas = None            # threadpoolctl controller (False: not available)


def _one_blas_thread():
    """A context limiting BLAS to one thread (a no-op without threadpoolctl).

    Right after a batch the core's OpenMP threads still spin-wait, and a
    threaded BLAS's workers spin after its call into the next batch: on two
    cores, letting BLAS thread the contrastive products slowed the paper
    network's whole training step by 5 % (docs/speed.md).
    """
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController()
        except Exception:       # pragma: no cover - threadpoolctl comes with scikit-learn
            _blas = False
    if _blas is False:
        return contextlib.nullcontext()
    return _blas.limit(limits=1, user_api="blas")


def _exact_tn(lhs_t: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs_t.T @ rhs`` (int64) of integer-valued float64 matrices, one float64 GEMM.

    Exact because every term and every partial sum, in any order of
    summation, is an integer of magnitude below ``2**53`` (the callers assert
    the bound).  Runs on one BLAS thread (:func:`_one_blas_thread`).
    """
    with _one_blas_thread():
        return (lhs_t.T @ rhs).astype(np.int64)


def _channels_last(t: np.ndarray, padding: int = 0) -> np.ndarray:
    """``(B, C, H, W)`` integers as float64 ``(B, H + 2P, W + 2P, C)``, zero-padded."""
    bsz, c, h, w = t.shape
    out = np.zeros((bsz, h + 2 * padding, w + 2 * padding, c), np.float64)
    out[:, padding:padding + h, padding:padding + w] = t.transpose(0, 2, 3, 1)
    return out


def contrastive_conv(pre: LayerTraces, post: LayerTraces, kernel: int, padding: int,
                     conv_hw: tuple[int, int], trace_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, Gb)`` of a conv layer: ``G (Co, Ci, K, K)`` and ``Gb (Co,)``, int64.

    ``G[o,i,u,v] = sum g[o,yc,xc] pre[i,yc+u-P,xc+v-P]`` is regrouped by pooled
    position: with the post trace copied to the four positions of its pool
    window (avg), ``sum_{r,c} post[o,r,c] * S[i,2r+u,2c+v]`` where ``S`` is the
    2x2 box sum of the padded pre map; with max-pool, one such product per
    window position ``(m, n)`` with the post masked to its argmax.  Both are
    one matrix product (``+`` and ``-`` phases and window positions stacked
    as rows, the minus post negated; columns ``(u, v, i)``, built from
    channel-last maps so each copy moves whole channel vectors) of integers
    whose absolute sum is below ``2**53`` (asserted), so every partial sum,
    in any order, is exact (:func:`_exact_tn`).
    """
    hc, wc = conv_hw
    bsz, co, h, w = post.plus.shape
    ci = pre.plus.shape[1]
    check_exact(contrastive_sum_bound(bsz, hc * wc, trace_max), "contrastive sum")
    lhs, maps = [], []          # per row block: post (B*h*w, Co); the map and offset it reads
    for sign, pre_t, post_t, idx in ((1, pre.plus, post.plus, post.idx_plus),
                                     (-1, pre.minus, post.minus, post.idx_minus)):
        pp = _channels_last(pre_t, padding)
        pt = sign * _channels_last(post_t).reshape(-1, co)
        if idx is None:
            box = pp[:, :-1, :-1] + pp[:, 1:, :-1]
            box += pp[:, :-1, 1:]
            box += pp[:, 1:, 1:]
            lhs.append(pt)
            maps.append((box, 0, 0))
        else:
            it = np.asarray(idx).transpose(0, 2, 3, 1).reshape(-1, co)
            for mn in range(4):
                lhs.append(np.where(it == mn, pt, 0.0))
                maps.append((pp, mn >> 1, mn & 1))
    n = bsz * h * w
    rhs = np.empty((len(maps) * n, kernel, kernel, ci), np.float64)
    for blk, (m, y0, x0) in enumerate(maps):
        for u in range(kernel):
            for v in range(kernel):
                win = m[:, y0 + u:y0 + u + 2 * h:2, x0 + v:x0 + v + 2 * w:2]   # (B, h, w, Ci)
                rhs[blk * n:(blk + 1) * n, u, v] = win.reshape(n, ci)
    g = _exact_tn(np.concatenate(lhs), rhs.reshape(len(maps) * n, -1))
    grads = np.ascontiguousarray(g.reshape(co, kernel, kernel, ci).transpose(0, 3, 1, 2))
    gb = (post.plus.astype(np.int64) - post.minus).sum(axis=(0, 2, 3))
    return grads, gb


def contrastive_fc(pre: LayerTraces, post: LayerTraces,
                   trace_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, Gb)`` of an FC layer: ``G (out, in)`` and ``Gb (out,)``, int64.

    One matrix product of the stacked phases (minus negated), exact as above.
    """
    bsz = post.plus.shape[0]
    check_exact(contrastive_sum_bound(bsz, 1, trace_max), "contrastive sum")
    lhs = np.empty((2 * bsz,) + post.plus.shape[1:], np.float64)
    lhs[:bsz] = post.plus
    np.negative(post.minus, out=lhs[bsz:])
    rhs = np.empty((2 * bsz, pre.plus[0].size), np.float64)
    rhs[:bsz] = pre.plus.reshape(bsz, -1)
    rhs[bsz:] = pre.minus.reshape(bsz, -1)
    g = _exact_tn(lhs, rhs)
    gb = (post.plus.astype(np.int64) - post.minus).sum(axis=0)
    return g, gb


@njit(cache=True)
def apply_update(params, grads, mantissa, shift, seed, update, stream, lo, hi):
    """``params += stochastic_shift(grads * mantissa, shift, rnd)`` with saturation.

    ``params`` int32 flat (modified in place), ``grads`` int64 flat.  Returns
    ``(saturations, changed)``.  Each index draws its own counter-based random
    word, so the result does not depend on the order or the thread count.
    Serial: a few thousand parameters per layer cost microseconds, less than
    waking a thread pool (which, on a loaded machine, costs milliseconds).
    """
    sat = 0
    chg = 0
    for i in range(params.shape[0]):
        gi = grads[i]
        if gi == 0:
            continue
        rnd = nx.random_bits(seed, update, stream, i)
        delta = nx.stochastic_shift(gi * mantissa, shift, rnd)
        old = np.int64(params[i])
        new = old + delta
        new_s = nx.saturate(new, lo, hi)
        sat += new_s != new
        chg += new_s != old
        params[i] = new_s
    return sat, chg


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


def update_network(net: Network, grads: list[tuple[np.ndarray, np.ndarray]],
                   lr_factor: float = 1.0) -> UpdateStats:
    """Apply one EP update to ``net`` in place and advance its update counter.

    ``lr_factor`` scales every layer's rate before the rates become their
    integer mantissa/shift constants (a learning-rate schedule's factor).
    """
    consts = net.constants(lr_factor)
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

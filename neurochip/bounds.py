"""Every integer bound, written once, and the check that refuses a configuration beyond them.

* :data:`EXACT_FLOAT64` (``2**53``): integers float64 holds exactly; the
  contrastive sums go through float64 products, valid while the sum of the
  terms' magnitudes stays below it (:func:`check_exact`).
* :data:`INT64_LIMIT` (``2**63``): the aligned synaptic input and the update
  products must stay below it.
* :func:`contrastive_sum_bound`: ``2 B P trace_max**2`` for a batch of ``B``,
  ``P`` positions per output channel (``Hc*Wc`` conv, 1 FC), both phases.
* :func:`check_headroom`: all of them for a network, before any work.
* :func:`int32_lanes_exact`: whether a hidden layer's update fits 32-bit lanes
  (``neurochip/core/lanes.py``) exactly.
"""
from __future__ import annotations

import math

from .errors import UserError
from .pooling import kernel_side, weights_per_entry

EXACT_FLOAT64 = 1 << 53
INT64_LIMIT = 1 << 63
INT32_LIMIT = 1 << 31


def check_exact(bound: int, what: str) -> None:
    """Raise OverflowError unless ``bound < 2**53`` (float64 sums of integers then exact)."""
    if not bound < EXACT_FLOAT64:
        raise OverflowError(f"{what}: integer bound {bound} is not below 2**53; "
                            "float64 sums would not be exact")


def contrastive_positions(arch, layer: int) -> int:
    """Positions summed per output channel in layer ``layer``'s (0-based) contrastive sum."""
    if arch.layers[layer].kind == "conv":
        _, hc, wc = arch.conv_shape(layer)
        return hc * wc
    return 1


def contrastive_sum_bound(batch: int, positions: int, trace_max: int) -> int:
    """Sum of the magnitudes of one contrastive sum's terms: ``2 B P trace_max**2``."""
    return 2 * batch * positions * trace_max * trace_max


def int32_lanes_exact(lam_q: int, eps_q: int, one: int, bias_bits: int, reg_bits: int) -> bool:
    """Whether every intermediate of the 32-bit-lane update stays inside int32.

    With registers ``|r| <= R = 2**(reg_bits-1)`` (aligned input, decoder,
    residue), ``|bias| <= B = 2**(bias_bits-1)``, ``0 <= s <= ONE`` and Q12
    factors ``0 <= c <= 4096``, the largest magnitudes of
    ``neurochip/core/lanes.py`` are: the decoder's difference ``2R`` and new
    value ``3R + 1``; the drive ``R + B`` and its difference to ``s``,
    ``R + B + ONE``; the encoder's prediction product ``4096 ONE + 2**11`` and
    ``v``, ``R + 2 ONE``; inside ``mul_q12(c, d)`` (``|d| < 2**30`` required)
    ``c (d >> 12)`` is at most ``|d| + 4096`` and ``c (d & 4095)`` below ``2**24``.
    """
    big, bias, reg = max(one, 1), 1 << (bias_bits - 1), 1 << (reg_bits - 1)
    return (0 <= lam_q <= 4096 and 0 <= eps_q <= 4096
            and 2 * reg < (1 << 30) and reg + bias + big < (1 << 30)
            and 3 * reg + 1 < INT32_LIMIT and 4096 * big + 2048 < INT32_LIMIT
            and reg + 2 * big < INT32_LIMIT)


def conv_input_bound(in_channels: int, kernel: int, is_max: bool, weight_max: int) -> int:
    """Largest summed weight one conv neuron can receive in a step (every input spiking)."""
    return in_channels * kernel_side(kernel, is_max) ** 2 * weights_per_entry(is_max) * weight_max


def _log2(v: float) -> str:
    return f"2^{math.log2(v):.1f}" if v > 0 else "0"


def check_headroom(net, training: bool = True) -> None:
    """Refuse a configuration whose int64 intermediates could overflow (never silent).

    Bounds, per layer: the aligned input ``(u_fwd << sh_fwd) + ((u_fb *
    fb_mult) << sh_fb)``, the contrastive sums (``< 2**53``, exact in
    float64) and the update products ``G * M + 2**K`` of weights and biases
    (the last two only when ``training``).  Raises a one-line UserError.
    """
    try:
        consts = net.constants()
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise UserError(f"the hyper-parameters give an unrepresentable learning-rate constant "
                        f"({exc}); lower --lrs or raise --beta / --batch-size") from None
    arch, hyp, wd = net.arch, net.hyper, net.widths
    wmax = 1 << (wd.weight_bits - 1)
    tmax = (1 << wd.trace_bits) - 1
    bsz = hyp.batch_size
    is_max = hyp.pool == "max"
    sizes = arch.layer_sizes()
    shapes = arch.state_shapes()
    n = arch.n_layers

    def fan(i: int) -> int:       # weights summed into one u of layer i+1, times the entry bound
        spec = arch.layers[i]
        if spec.kind == "fc":
            return sizes[i] * wmax
        return conv_input_bound(arch.weight_shapes()[i][1], spec.kernel, is_max, wmax)

    for i, spec in enumerate(arch.layers):
        lc = consts.layers[i]
        tok = f"layer {i + 1} ({spec.token()})"
        fb = 0
        if i + 1 < n:
            nxt = arch.layers[i + 1]
            if nxt.kind == "fc":
                fb = nxt.channels * wmax
            else:
                fb = conv_input_bound(nxt.channels, nxt.kernel, is_max, wmax)
        bound = (fan(i) << lc.sh_fwd) + ((fb * max(lc.fb_mult, 1)) << lc.sh_fb) + (1 << lc.sh_out)
        if bound >= INT64_LIMIT:
            raise UserError(f"{tok}: the aligned synaptic input could overflow 64 bits "
                            f"(bound {_log2(bound)}); lower --bits or --state-bits")
        if not training:
            continue
        positions = contrastive_positions(arch, i)
        pooled = int(shapes[i][1] * shapes[i][2]) if spec.kind == "conv" else 1
        g_learning = contrastive_sum_bound(bsz, positions, tmax)
        if g_learning >= EXACT_FLOAT64:
            raise UserError(f"{tok}: --batch-size {bsz} with --trace-bits {wd.trace_bits} could "
                            f"exceed the exact 53-bit contrastive sum (bound {_log2(g_learning)}); "
                            "lower --batch-size or --trace-bits")
        for what, g, (mant, shift) in (("weight", bsz * positions * tmax * tmax, lc.lr_w),
                                       ("bias", bsz * pooled * tmax, lc.lr_b)):
            prod = g * mant + (1 << shift)
            if prod >= INT64_LIMIT:
                raise UserError(f"{tok}: the {what} update product could overflow 64 bits "
                                f"(bound {_log2(prod)}); lower --batch-size, --trace-bits or --lrs")

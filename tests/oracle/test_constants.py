"""Oracle: every derived integer constant, re-derived here from the hyper-parameters.

``Network.constants()`` (docs/numerics.md §3) is compared exactly with a derivation
written in this file from the real-valued definitions: exact rational arithmetic
(:class:`fractions.Fraction`), integer comparisons instead of ``log2``, and nothing
from ``neurochip.numerics`` (no ``q12``, ``lr_constants``, ``input_alignment`` or
``round_shift``).  Besides equality with the documented formulas, each constant is
held to its *meaning*: the learning-rate mantissa times ``2**-shift`` is the real
factor to 15 bits, and the alignment shifts put both inputs on the state's scale.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from neurochip.network import PRESETS, Hyper, Network, Widths

Q = 4096                       # Q12: a constant c in [0, 1] is the integer round(c * 4096)
LR_MANTISSA = 15               # docs §3: a 15-bit learning-rate mantissa
MAX_SHIFT = 62                 # the random word's width bounds the stochastic shift


def round_half_up(x: Fraction) -> int:
    """``floor(x + 1/2)`` of an exact rational."""
    return math.floor(x + Fraction(1, 2))


def floor_log2(x: Fraction) -> int:
    """``floor(log2 x)`` of a positive rational, by exact comparison."""
    k = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** k > x:
        k -= 1
    while Fraction(2) ** (k + 1) <= x:
        k += 1
    return k


def exponent(fan_in: int, weight_bits: int) -> int:
    """Largest ``e`` with ``2**e * 2/sqrt(fan_in) <= 2**(Bw-1) - 1`` (docs §2), i.e.
    the initial bound ``1/sqrt(fan_in)`` uses at most half the signed range."""
    hi = 2 ** (weight_bits - 1) - 1
    fits = lambda e: 4 * Fraction(4) ** e <= hi * hi * fan_in    # squared, exact  # noqa: E731
    e = 0
    while not fits(e):
        e -= 1
    while fits(e + 1):
        e += 1
    return e


def mantissa_shift(f: Fraction) -> tuple[int, int]:
    """``f ~ M * 2**-K``, ``K = 14 - floor(log2 f)`` in [0, 62], ``M = round(f 2**K)``."""
    if f <= 0:
        return 0, 0
    k = min(MAX_SHIFT, max(0, LR_MANTISSA - 1 - floor_log2(f)))
    return round_half_up(f * 2 ** k), k


def fan_in(arch, i):
    shp = arch.weight_shapes()[i]
    return math.prod(shp[1:])


def derive(net: Network) -> dict:
    """Every constant of ``net.constants()`` from ``net``'s hyper-parameters and widths."""
    h, wd, arch = net.hyper, net.widths, net.arch
    one = 2 ** wd.state_bits
    q12 = lambda v: round_half_up(Fraction(v) * Q)              # noqa: E731
    lam_q, beta_q, alpha_q = q12(h.lam), q12(h.beta), q12(h.alpha)
    theta_fp = round_half_up(Fraction(h.theta) * one)
    tmax = 2 ** wd.trace_bits - 1
    exps = [exponent(fan_in(arch, i), wd.weight_bits) for i in range(arch.n_layers)]
    layers = []
    L = arch.n_layers
    for i, spec in enumerate(arch.layers):
        conv_avg = spec.kind == "conv" and h.pool == "avg"
        pool_shift = 2 if conv_avg else 0                       # the 2x2 average's 1/4
        last = i == L - 1
        if last:
            fb_mult = 0
        elif conv_avg and arch.layers[i + 1].kind == "conv":
            fb_mult = alpha_q                                   # alpha-scaled NN upsampling
        else:
            fb_mult = Q                                         # 1.0
        # Forward weights carry e + p fraction bits, feedback weights times a Q12
        # multiplier e' + 12, the state S: align all on the finest, round once to S.
        fracs = [exps[i] + pool_shift, wd.state_bits] + ([] if last else [exps[i + 1] + 12])
        g = max(fracs)
        sh_fb = 0 if last else g - exps[i + 1] - 12
        # dW (weight units) = lr c / (2 beta B) * sum(trace products) / tmax^2 * 2^e,
        # with c the pooling's dPhi/dW factor (algorithm.md: 1/4, the exact one, or alpha)
        if conv_avg:
            c = Fraction(1, 4) if h.update_scale == "quarter" else Fraction(h.alpha)
        else:
            c = Fraction(1)
        denom = 2 * Fraction(beta_q, Q) * h.batch_size
        f_w = Fraction(h.lrs[i]) * c * Fraction(2) ** exps[i] / (denom * tmax * tmax)
        f_b = Fraction(h.lrs[i]) * one / (denom * tmax)
        layers.append(dict(sh_fwd=g - exps[i] - pool_shift, fb_mult=fb_mult, sh_fb=sh_fb,
                           sh_out=g - wd.state_bits, pool_shift=pool_shift,
                           lr_w=mantissa_shift(f_w), lr_b=mantissa_shift(f_b), f_w=f_w, f_b=f_b))
    return dict(one=one, beta_q=beta_q, eps_q=q12(h.epsilon), lam_q=lam_q, alpha_q=alpha_q,
                theta_fp=theta_fp,
                thr_lam=round_half_up(Fraction(lam_q * theta_fp, Q)),
                one_lam=round_half_up(Fraction(lam_q * one, Q)),
                trace_max=tmax,
                w_range=(-2 ** (wd.weight_bits - 1), 2 ** (wd.weight_bits - 1) - 1),
                b_range=(-2 ** (wd.bias_bits - 1), 2 ** (wd.bias_bits - 1) - 1),
                exps=exps, layers=layers)


def _configs():
    """Every preset with both poolings and update scales, plus varied widths and rates."""
    out = []
    for name, p in PRESETS.items():
        for pool in ("avg", "max"):
            for scale in ("quarter", "alpha"):
                out.append((f"{name}-{pool}-{scale}", p.arch,
                            dataclasses.replace(p.hyper, pool=pool, update_scale=scale), p.widths))
    hyp = PRESETS["digits-2c"].hyper
    for bits, s, bt, bb in ((2, 8, 2, 10), (4, 8, 4, 12), (8, 12, 8, 16), (12, 14, 10, 20),
                            (16, 16, 16, 24), (5, 9, 3, 11)):
        out.append((f"widths-{bits}-{s}-{bt}-{bb}", PRESETS["digits-2c"].arch, hyp,
                    Widths(bits, s, bt, bb)))
    odd = [Hyper(beta=0.37, epsilon=0.13, lam=0.71, alpha=0.29, theta=0.33, lrs=(0.3, 0.0, 7e-4),
                 batch_size=7),
           Hyper(beta=1.0, epsilon=1.0, lam=1.0, alpha=1.0, theta=1.0, lrs=(10.0, 1e-6, 2.5),
                 batch_size=1, pool="max"),
           Hyper(beta=0.0003, epsilon=0.999, lam=0.0001, alpha=0.5, theta=0.0002,
                 lrs=(0.05, 0.05, 0.05), batch_size=500)]
    for j, h in enumerate(odd):
        out.append((f"odd-{j}", "1x8x8:c3k2p2-c5k3-f10", h, Widths(8, 12, 8, 16)))
        out.append((f"odd-fc-{j}", "1x8x8:f7-f5-f10", h, Widths(6, 10, 5, 14)))
    return out


CONFIGS = _configs()


@pytest.mark.parametrize("name,arch,hyper,widths", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_constants_match_independent_derivation(name, arch, hyper, widths):
    net = Network.create(arch, hyper, widths, seed=0)
    got, want = net.constants(), derive(net)
    assert net.weight_exp == want["exps"]
    for key in ("one", "beta_q", "eps_q", "lam_q", "alpha_q", "theta_fp", "thr_lam", "one_lam",
                "trace_max", "w_range", "b_range"):
        assert getattr(got, key) == want[key], key
    assert len(got.layers) == len(want["layers"])
    for l, (g, w) in enumerate(zip(got.layers, want["layers"]), start=1):
        for key in ("sh_fwd", "fb_mult", "sh_fb", "sh_out", "pool_shift", "lr_w", "lr_b"):
            assert getattr(g, key) == w[key], f"layer {l} {key}: {getattr(g, key)} != {w[key]}"


@pytest.mark.parametrize("name,arch,hyper,widths", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_constants_mean_what_they_say(name, arch, hyper, widths):
    """The constants' meaning, independent of how the doc writes the formulas."""
    net = Network.create(arch, hyper, widths, seed=0)
    c, want = net.constants(), derive(net)
    S = widths.state_bits
    for l, (lc, w) in enumerate(zip(c.layers, want["layers"])):
        e = net.weight_exp[l]
        # in = round(u_fwd 2^-(e+p) 2^S + u_fb fb/4096 2^-e' 2^S): both scale factors
        # are the exact shift differences, every shift a left shift or one final rounding
        assert lc.sh_fwd >= 0 and lc.sh_fb >= 0 and lc.sh_out >= 0
        assert lc.sh_fwd - lc.sh_out == S - e - lc.pool_shift
        if l + 1 < len(c.layers):
            assert lc.sh_fb - lc.sh_out == S - net.weight_exp[l + 1] - 12
        # the learning-rate factor to the mantissa's precision (15 bits: relative 2^-15)
        for (m, k), f in ((lc.lr_w, w["f_w"]), (lc.lr_b, w["f_b"])):
            if f == 0:
                assert m == 0
                continue
            assert 0 <= k <= MAX_SHIFT
            if 0 < k < MAX_SHIFT:
                assert 2 ** (LR_MANTISSA - 1) <= m < 2 ** LR_MANTISSA
                assert abs(Fraction(m, 2 ** k) - f) <= f * Fraction(1, 2 ** LR_MANTISSA)


def test_conv_update_factor_is_the_quarter_of_the_average():
    """``c = 1/4`` for an avg-pool conv layer: its weight factor is 1/4 of the same
    layer's with ``c = 1`` (max-pool), every other quantity equal."""
    arch, base = "1x8x8:c4k3p1-f10", PRESETS["digits"].hyper
    avg = Network.create(arch, base, seed=0).constants().layers[0].lr_w
    mx = Network.create(arch, dataclasses.replace(base, pool="max"), seed=0).constants().layers[0].lr_w
    fa, fm = Fraction(avg[0], 2 ** avg[1]), Fraction(mx[0], 2 ** mx[1])
    assert abs(fa * 4 / fm - 1) <= Fraction(2, 2 ** LR_MANTISSA)


@pytest.mark.parametrize("state_bits", [8, 12, 16])
def test_input_pixels_are_the_intensity_rounded_half_up(state_bits):
    """``x = round(p / pmax * ONE)``, ties up (docs §2), for every digits pixel value."""
    from neurochip.data import load_digits
    ds = load_digits()
    p = np.arange(ds.pixel_max + 1)
    got = ds.quantised(p.reshape(-1, 1, 1, 1).repeat(64, axis=1).reshape(-1, 1, 8, 8),
                       state_bits)[:, 0]
    want = [round_half_up(Fraction(int(v) * 2 ** state_bits, ds.pixel_max)) for v in p]
    assert got.tolist() == want

"""neurochip.numerics at the edges of the registers (property tests)."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from neurochip import numerics as nx


I62 = 1 << 62
both = pytest.mark.parametrize("impl", ["numba", "python"])


def _f(op, impl):
    return op if impl == "numba" else op.py_func


def _exact_round_shift(x, k):
    return x << -k if k <= 0 else math.floor(Fraction(x, 1 << k) + Fraction(1, 2))


widths_st = st.integers(2, 24).map(lambda b: nx.signed_range.py_func(b))
edge_ints = st.one_of(st.integers(-I62, I62 - 1),
                      st.sampled_from([-I62, -I62 + 1, -(1 << 23) - 1, -(1 << 23), -1, 0, 1,
                                       (1 << 23) - 1, 1 << 23, I62 - 2, I62 - 1]))


@both
@given(x=edge_ints, rng=widths_st)
@settings(max_examples=150, deadline=None)
def test_saturate_properties(impl, x, rng):
    lo, hi = rng
    sat = _f(nx.saturate, impl)
    y = sat(x, lo, hi)
    assert lo <= y <= hi
    assert sat(y, lo, hi) == y                          # idempotent
    assert y == x if lo <= x <= hi else y in (lo, hi)
    assert sat(x + 1, lo, hi) >= y                      # monotone


@both
@given(num=st.integers(-I62, I62 - 1), k=st.integers(0, 62), rnd=st.integers(0, I62 - 1))
@settings(max_examples=200, deadline=None)
def test_stochastic_shift_bounds(impl, num, k, rnd):
    sh = _f(nx.stochastic_shift, impl)
    lo = num >> k                                       # floor(num / 2**k)
    got = sh(num, k, rnd)
    assert got in (lo, lo + 1)
    assert sh(num, k, 0) == lo                          # no randomness: floor
    ceil = -((-num) >> k)
    if k > 0:
        assert sh(num, k, I62 - 1) == ceil              # all ones: ceiling
        assert sh(num, k, rnd) <= sh(num, k, min(rnd + (1 << (62 - k)), I62 - 1))   # monotone in rnd
    if num % (1 << k) == 0:
        assert got == lo                                # exact values are never rounded


@both
@given(x=st.integers(-I62, I62 - 1), k=st.integers(-10, 61))
@settings(max_examples=200, deadline=None)
def test_round_shift_at_int64_extremes(impl, x, k):
    if k < 0:
        x >>= 12                                        # keep the exact left shift inside int64
    if k > 0 and x > I62 - (1 << (k - 1)) - 1:
        x = I62 - (1 << (k - 1)) - 1                    # x + 2**(k-1) stays inside int64
    assert _f(nx.round_shift, impl)(x, k) == _exact_round_shift(x, k)


@given(sbits=st.integers(8, 16), lam_q=st.integers(1, 4096), theta=st.floats(0.01, 1.0),
       psi=st.sampled_from([nx.REG_MIN, nx.REG_MIN + 1, -1, 0, 1, nx.REG_MAX - 1, nx.REG_MAX]),
       a=st.sampled_from([0, 1, -2]), a_prev=st.sampled_from([0, 1, -2]))
@settings(max_examples=200, deadline=None)
def test_encoder_step_at_register_extremes(sbits, lam_q, theta, psi, a, a_prev):
    one = 1 << sbits
    a, a_prev = (one if v == 1 else one // 3 if v == -2 else 0 for v in (a, a_prev))
    thr = nx.round_shift.py_func(lam_q * math.floor(theta * one + 0.5), 12)
    one_lam = nx.round_shift.py_func(lam_q * one, 12)
    p1, q1 = nx.encoder_step(psi, a, a_prev, lam_q, thr, one_lam)
    p2, q2 = nx.encoder_step.py_func(psi, a, a_prev, lam_q, thr, one_lam)
    pred = _exact_round_shift((4096 - lam_q) * a_prev, 12)
    v = psi + a - pred
    assert (int(p1), int(q1)) == (int(p2), int(q2)) == (v - (v > thr) * one_lam, int(v > thr))
    s = nx.saturate(int(p1), nx.REG_MIN, nx.REG_MAX)
    assert nx.REG_MIN <= s <= nx.REG_MAX


@given(sbits=st.integers(8, 16), lam_q=st.integers(1, 4096), theta=st.floats(0.01, 1.0),
       acts=st.lists(st.integers(0, 1 << 16), min_size=1, max_size=300))
@settings(max_examples=150, deadline=None)
def test_encoder_residue_stays_far_inside_its_register(sbits, lam_q, theta, acts):
    """Any activation sequence in [0, ONE]: |psi| <= 4 ONE <= 2**18, so the 24-bit psi
    register cannot saturate for S <= 16 (why the encoder counter stays 0)."""
    one = 1 << sbits
    thr = nx.round_shift.py_func(lam_q * math.floor(theta * one + 0.5), 12)
    one_lam = nx.round_shift.py_func(lam_q * one, 12)
    psi, prev = 0, 0
    for a in acts:
        a = min(a, one)
        psi, q = nx.encoder_step.py_func(psi, a, prev, lam_q, thr, one_lam)
        prev = a
        assert abs(psi) <= 4 * one
    assert 4 * (1 << 16) < nx.REG_MAX


@both
@given(dec=st.integers(nx.REG_MIN, nx.REG_MAX), inp=st.integers(nx.REG_MIN, nx.REG_MAX),
       lam_q=st.integers(0, 4096))
@settings(max_examples=200, deadline=None)
def test_decoder_step_is_a_convex_combination(impl, dec, inp, lam_q):
    """``dec'`` lies between ``dec`` and the (saturated) input: the decoder register
    cannot saturate (why the decoder counter stays 0)."""
    d = _f(nx.decoder_step, impl)(dec, inp, lam_q)
    assert min(dec, inp) <= d <= max(dec, inp)
    assert d == dec + _exact_round_shift(lam_q * (inp - dec), 12)
    if lam_q == 4096:
        assert d == inp
    if lam_q == 0:
        assert d == dec


@both
@given(sbits=st.integers(8, 16), s=st.integers(0, 1 << 16), eps_q=st.integers(0, 4096),
       drive=st.one_of(st.integers(-(1 << 40), 1 << 40), st.sampled_from([-(1 << 40), 1 << 40, 0])))
@settings(max_examples=200, deadline=None)
def test_state_step_clamps(impl, sbits, s, eps_q, drive):
    one = 1 << sbits
    s = min(s, one)
    got = _f(nx.state_step, impl)(s, drive, eps_q, one)
    assert 0 <= got <= one
    assert got == min(max(s + _exact_round_shift(eps_q * (drive - s), 12), 0), one)


@both
@given(uf=st.integers(-(1 << 30), 1 << 30), ub=st.integers(-(1 << 30), 1 << 30),
       sh_fwd=st.integers(0, 20), fb=st.sampled_from([0, 1, 2048, 4096]), sh_fb=st.integers(0, 16),
       sh_out=st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_align_input_extremes(impl, uf, ub, sh_fwd, fb, sh_fb, sh_out):
    got = _f(nx.align_input, impl)(uf, ub, sh_fwd, fb, sh_fb, sh_out)
    assert got == _exact_round_shift((uf << sh_fwd) + ((ub * fb) << sh_fb), sh_out)


@given(sbits=st.integers(8, 16), s=st.integers(0, 1 << 16), beta_q=st.integers(-4096, 4096),
       label=st.booleans())
@settings(max_examples=150, deadline=None)
def test_nudge_term_bounded(sbits, s, beta_q, label):
    one = 1 << sbits
    s = min(s, one)
    got = nx.nudge_term(s, one if label else 0, beta_q)
    assert got == nx.nudge_term.py_func(s, one if label else 0, beta_q)
    assert abs(got) <= -(-abs(beta_q) * one // 4096)


@given(sbits=st.integers(8, 16), tbits=st.integers(2, 16), s=st.integers(0, 1 << 16))
@settings(max_examples=150, deadline=None)
def test_trace_latch_edges(sbits, tbits, s):
    one, tmax = 1 << sbits, (1 << tbits) - 1
    s = min(s, one)
    t = nx.trace_latch(s, tmax, sbits)
    assert 0 <= t <= tmax and t == nx.trace_latch.py_func(s, tmax, sbits)
    assert nx.trace_latch(0, tmax, sbits) == 0 and nx.trace_latch(one, tmax, sbits) == tmax
    assert nx.trace_latch(max(s - 1, 0), tmax, sbits) <= t          # monotone


@given(seed=st.sampled_from([0, 1, (1 << 32) - 1]), update=st.integers(0, (1 << 40)),
       stream=st.integers(0, 64), index=st.integers(0, (1 << 32) - 1))
@settings(max_examples=100, deadline=None)
def test_random_bits_range_and_masking(seed, update, stream, index):
    r = nx.random_bits(seed, update, stream, index)
    assert 0 <= r < I62
    assert r == nx.random_bits.py_func(seed, update, stream, index)
    assert r == nx.random_bits(seed, update & 0xFFFFFFFF, stream, index)   # counters are 32-bit


def test_q12_and_lr_constant_edges():
    assert nx.q12(0.0) == 0 and nx.q12(1.0) == 4096
    assert nx.q12(1 / 8192) == 1 and nx.q12(1 / 8192 - 1e-12) == 0
    m, k = nx.lr_constants(1e-30)
    assert k == 62 and m == 0                                  # too small: rounds to no update
    m, k = nx.lr_constants(2.0 ** 20)
    assert k == 0 and m == 1 << 20
    with pytest.raises(ValueError):
        nx.lr_constants(2.0 ** 31)

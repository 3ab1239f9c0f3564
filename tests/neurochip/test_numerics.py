"""Every integer operation against a plain NumPy / Python reading of docs/numerics.md.

The expected values are computed here independently (Python's exact integers,
``math.floor`` of rationals), never with neurochip.numerics itself, on random
inputs that include the range edges; the compiled (Numba) and the plain-Python
(``py_func``, used by the PyTorch reference and Lava) forms are both checked.
"""
from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurochip import numerics as nx

REG_LO, REG_HI = -(1 << 23), (1 << 23) - 1
rng = np.random.default_rng(1234)


def ref_round_shift(x: int, k: int) -> int:
    """x / 2**k rounded to nearest, ties toward +inf (docs §1)."""
    if k <= 0:
        return x * 2 ** (-k)
    return math.floor(Fraction(x, 2 ** k) + Fraction(1, 2))


def edge_ints(lo, hi, n=300):
    vals = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    return np.array(vals + list(rng.integers(lo, hi, n, endpoint=True)), dtype=np.int64)


def both(op):
    return (op, op.py_func)


@pytest.mark.parametrize("impl", [0, 1])
@pytest.mark.parametrize("k", [-3, 0, 1, 2, 12, 24, 40])
def test_round_shift(impl, k):
    xs = edge_ints(-(1 << 40), 1 << 40)
    f = both(nx.round_shift)[impl]
    for x in xs:
        assert f(int(x), k) == ref_round_shift(int(x), k)
    # array form equals the scalar form
    assert np.array_equal(nx.round_shift.py_func(xs, k), [ref_round_shift(int(x), k) for x in xs])


@given(st.integers(-(1 << 50), 1 << 50), st.integers(0, 30))
@settings(max_examples=300, deadline=None)
def test_round_shift_property(x, k):
    assert nx.round_shift(x, k) == ref_round_shift(x, k)


@pytest.mark.parametrize("impl", [0, 1])
def test_saturate(impl):
    f = both(nx.saturate)[impl]
    for x in edge_ints(-(1 << 30), 1 << 30):
        assert f(int(x), REG_LO, REG_HI) == min(max(int(x), REG_LO), REG_HI)
    for x in (REG_LO - 1, REG_LO, REG_HI, REG_HI + 1):
        assert f(x, REG_LO, REG_HI) == min(max(x, REG_LO), REG_HI)


def test_signed_range():
    for b in range(2, 25):
        assert nx.signed_range(b) == (-(2 ** (b - 1)), 2 ** (b - 1) - 1)


@pytest.mark.parametrize("pmax", [16, 255])
@pytest.mark.parametrize("sbits", [8, 12, 16])
def test_quantise_pixels(pmax, sbits):
    one = 1 << sbits
    p = np.arange(pmax + 1, dtype=np.int64)
    got = nx.quantise_pixels.py_func(p, pmax, one)
    want = [math.floor(Fraction(int(v) * one, pmax) + Fraction(1, 2)) if False else
            (int(v) * one + pmax // 2) // pmax for v in p]
    assert np.array_equal(got, want)
    assert got[0] == 0 and got[-1] == one
    # round half up within half an LSB of the exact value
    assert np.all(np.abs(got - p * one / pmax) <= 0.5)


def ref_encoder(psi, a, a_prev, lam_q, thr_lam, one_lam):
    pred = ref_round_shift((4096 - lam_q) * a_prev, 12)
    v = psi + a - pred
    q = int(v > thr_lam)
    return v - q * one_lam, q


@pytest.mark.parametrize("impl", [0, 1])
def test_encoder_step(impl):
    f = both(nx.encoder_step)[impl]
    one = 1 << 12
    for _ in range(2000):
        lam_q = int(rng.integers(1, 4097))
        theta = int(rng.integers(1, one + 1))
        thr = ref_round_shift(lam_q * theta, 12)
        one_lam = ref_round_shift(lam_q * one, 12)
        psi = int(rng.integers(REG_LO, REG_HI + 1)) if rng.random() < 0.1 else int(rng.integers(-2 * one, 2 * one))
        a, ap = int(rng.integers(0, one + 1)), int(rng.choice([0, one, int(rng.integers(0, one + 1))]))
        p, q = f(psi, a, ap, lam_q, thr, one_lam)
        assert (int(p), int(q)) == ref_encoder(psi, a, ap, lam_q, thr, one_lam)


def test_encoder_rate_tracks_activation():
    """Long-run spike rate of the encoder equals the constant activation (sigma-delta)."""
    one = 1 << 12
    for lam in (0.5, 1.0):
        lam_q = nx.q12(lam)
        thr = nx.round_shift(lam_q * (one // 2), 12)
        one_lam = nx.round_shift(lam_q * one, 12)
        for frac in (0.0, 0.1, 0.37, 0.5, 1.0):
            a = int(frac * one)
            psi, prev, n = 0, 0, 0
            for _ in range(1000):
                psi, q = nx.encoder_step(psi, a, prev, lam_q, thr, one_lam)
                prev = a
                n += q
            assert abs(n / 1000 - frac) < 0.01


@pytest.mark.parametrize("impl", [0, 1])
def test_align_input(impl):
    f = both(nx.align_input)[impl]
    for _ in range(2000):
        sh_fwd, sh_fb, sh_out = (int(v) for v in rng.integers(0, 20, 3))
        fb_mult = int(rng.integers(0, 4097))
        uf, ub = (int(v) for v in rng.integers(-(1 << 22), 1 << 22, 2))
        want = ref_round_shift(uf * 2 ** sh_fwd + ub * fb_mult * 2 ** sh_fb, sh_out)
        assert f(uf, ub, sh_fwd, fb_mult, sh_fb, sh_out) == want


@pytest.mark.parametrize("impl", [0, 1])
def test_decoder_nudge_state(impl):
    dec_f, nud_f, st_f = (both(nx.decoder_step)[impl], both(nx.nudge_term)[impl],
                          both(nx.state_step)[impl])
    one = 1 << 12
    for _ in range(2000):
        lam_q, eps_q, beta = (int(v) for v in rng.integers(0, 4097, 3))
        beta *= int(rng.choice([-1, 1]))
        dec, inp = (int(v) for v in rng.integers(REG_LO, REG_HI + 1, 2))
        assert dec_f(dec, inp, lam_q) == dec + ref_round_shift(lam_q * (inp - dec), 12)
        s = int(rng.integers(0, one + 1))
        y = int(rng.choice([0, one]))
        assert nud_f(s, y, beta) == ref_round_shift(beta * (y - s), 12)
        drive = int(rng.integers(-(1 << 24), 1 << 24))
        want = min(max(s + ref_round_shift(eps_q * (drive - s), 12), 0), one)
        assert st_f(s, drive, eps_q, one) == want


def test_decoder_converges_to_constant_input():
    dec = 0
    for _ in range(200):
        dec = nx.decoder_step(dec, 3000, nx.q12(0.3))
    assert abs(dec - 3000) <= 2


@pytest.mark.parametrize("tbits", [2, 4, 8, 12])
def test_trace_latch(tbits):
    one = 1 << 12
    tmax = (1 << tbits) - 1
    s = np.arange(one + 1, dtype=np.int64)
    got = nx.trace_latch.py_func(s, tmax, 12)
    want = [ref_round_shift(int(v) * tmax, 12) for v in s]
    assert np.array_equal(got, want)
    assert got.min() == 0 and got.max() == tmax


def ref_mix(x):
    """lowbias32 with Python's unbounded ints (docs §7)."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x735A2D97) & 0xFFFFFFFF
    x ^= x >> 15
    return x


def test_mul32_mix32_against_uint64():
    xs = np.concatenate([[0, 1, 0xFFFFFFFF, 0x80000000], rng.integers(0, 1 << 32, 2000)]).astype(np.uint64)
    for c in (0x21F0AAAD, 0x735A2D97, 0xFFFFFFFF, 1):
        want = (xs * np.uint64(c)) & np.uint64(0xFFFFFFFF)   # uint64 wraps mod 2**64
        got = nx.mul32.py_func(xs.astype(np.int64), c)
        assert np.array_equal(got.astype(np.uint64), want)

    for x in xs[:500]:
        assert nx.mix32(int(x)) == ref_mix(int(x))


def test_random_bits_reference_and_uniformity():
    def ref_bits(seed, upd, stream, idx):
        h = ref_mix(seed)
        h = ref_mix(h ^ upd)
        h = ref_mix(h ^ stream)
        h1 = ref_mix(h ^ idx)
        h2 = ref_mix(h1 ^ 0x9E3779B9)
        return ((h1 & 0x7FFFFFFF) << 31) | (h2 & 0x7FFFFFFF)

    for seed, upd, stream, idx in [(0, 0, 0, 0), (2 ** 32 - 1, 12345, 7, 3_000_000), (42, 1, 2, 3)]:
        assert nx.random_bits(seed, upd, stream, idx) == ref_bits(seed, upd, stream, idx)
    idx = np.arange(100_000, dtype=np.int64)
    r = nx.random_bits.py_func(7, 3, 2, idx)
    assert r.min() >= 0 and r.max() < 2 ** 62
    top = r >> 58                                  # 4 top bits: 16 bins
    counts = np.bincount(top, minlength=16)
    assert counts.min() > 5800 and counts.max() < 6700
    assert len(np.unique(r)) == len(r)


@pytest.mark.parametrize("k", [0, 1, 5, 31, 62])
def test_stochastic_shift_exact_and_unbiased(k):
    rnd = nx.random_bits.py_func(1, 2, 3, np.arange(20000, dtype=np.int64))
    for num in (-(1 << 40) - 5, -7, -1, 0, 1, 3, (1 << 40) + 12345):
        got = nx.stochastic_shift.py_func(np.int64(num), k, rnd)
        lo = math.floor(Fraction(num, 2 ** k))
        assert set(np.unique(got)) <= {lo, lo + 1}
        frac = Fraction(num, 2 ** k) - lo
        if frac == 0:
            assert np.all(got == lo)
        elif k <= 31:
            assert abs(np.mean(got - lo) - float(frac)) < 0.02
    # scalar compiled form equals the array form
    for i in range(50):
        assert nx.stochastic_shift(12345, k, int(rnd[i])) == nx.stochastic_shift.py_func(12345, k, int(rnd[i]))


def test_lr_constants():
    for f in (1e-9, 3.7e-5, 0.01, 0.5, 1.0, 3.0):
        m, k = nx.lr_constants(f)
        assert abs(m / 2 ** k - f) / f < 2 ** -13
        assert m < 2 ** 15 or k == 0
    assert nx.lr_constants(0.0) == (0, 0)


def test_input_alignment():
    for e, p, fe, s in [(7, 2, 11, 12), (12, 0, 7, 12), (20, 0, None, 12), (3, 2, 3, 16)]:
        sh_fwd, sh_fb, sh_out = nx.input_alignment(e, p, fe, s)
        g = max(e + p, s, (fe + 12) if fe is not None else 0)
        assert sh_fwd == g - e - p >= 0 and sh_out == g - s >= 0
        if fe is not None:
            assert sh_fb == g - fe - 12 >= 0

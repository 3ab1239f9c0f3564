"""Every integer rule of neurochip, written once.

This module is the executable form of ``docs/numerics.md``.  Each function is a
small pure elementwise operation built only from ``+ - * << >> & ^`` and
comparisons, so the *same* Python source runs

* compiled by Numba inside the core's kernels (``op(...)`` on scalars or arrays),
* as plain Python on NumPy arrays or PyTorch integer tensors through
  :data:`pure` (``numerics.pure.encoder_step(...)``): the reference and the
  Lava process models call these.

``pure.<op>`` runs the *same code object* as ``<op>.py_func``, with helper
names bound to their pure twins (a composite op's ``py_func`` alone would call
the Numba dispatchers of its helpers, which reject tensors).

No other module may write a shift, a rounding or a saturation rule of its own.

Conventions (all integers, two's complement):

* ``Q12``: constant multipliers (epsilon, lambda, alpha, beta) are integers in
  ``[0, 4096]`` meaning ``value / 4096``, like Loihi's 12-bit decays.
* state-like values (state ``s``, decoder ``dec``, bias, encoder residue
  ``psi``) have ``S`` fraction bits: ``ONE = 2**S`` stands for 1.0.
* ``round_shift(x, k)`` with ``k > 0`` is ``floor((x + 2**(k-1)) / 2**k)``:
  round to nearest, ties toward +infinity.  ``k <= 0`` is an exact left shift.
* chip registers are ``REG_BITS = 24`` bit signed and *saturate*.
"""
from __future__ import annotations

import math
import types

from numba import njit

Q12_BITS = 12
Q12_ONE = 1 << Q12_BITS
REG_BITS = 24
REG_MAX = (1 << (REG_BITS - 1)) - 1
REG_MIN = -(1 << (REG_BITS - 1))
MASK32 = 0xFFFFFFFF
RANDOM_BITS = 62
LR_MANTISSA_BITS = 15


def _op(fn):
    """Compile ``fn`` with Numba (cached); ``.py_func`` keeps the plain source."""
    return njit(cache=True, inline="always")(fn)


# --------------------------------------------------------------------- basics
@_op
def round_shift(x, k):
    """Multiply by ``2**-k`` and round to nearest, ties toward +inf.

    ``k > 0``: ``(x + 2**(k-1)) >> k`` (arithmetic shift).  ``k <= 0``:
    ``x << -k``, exact.  ``x``: any signed integer (int64 in kernels).
    """
    if k > 0:
        return (x + (1 << (k - 1))) >> k
    return x << (-k)


@_op
def saturate(x, lo, hi):
    """``min(max(x, lo), hi)`` written with arithmetic so tensors work too."""
    return x + (x < lo) * (lo - x) - (x > hi) * (x - hi)


@_op
def signed_range(bits):
    """``(lo, hi)`` of a ``bits``-wide two's complement register."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@_op
def quantise_pixels(pixels, pixel_max, one):
    """Input intensity ``p / pixel_max`` as a state-like value in ``[0, ONE]``.

    ``(p * ONE + pixel_max // 2) // pixel_max`` (round half up); ``p >= 0``.
    """
    return (pixels * one + pixel_max // 2) // pixel_max


# ----------------------------------------------------------- neuron dynamics
@_op
def encoder_step(psi, a, a_prev, lam_q, thr_lam, one_lam):
    """Predictive sigma-delta encoder, division-free (one step, one neuron).

    Real form (O'Connor 2019): ``c = (a - (1-lam) a_prev) / lam``,
    ``phi += c``, spike ``q = [phi > theta]``, ``phi -= q``.  Multiplying by
    ``lam`` gives the residue ``psi = lam * phi`` (S fraction bits)::

        pred = round_shift((4096 - lam_q) * a_prev, 12)
        v    = psi + a - pred
        q    = v > thr_lam                    # thr_lam = round_shift(lam_q*theta, 12)
        psi' = v - q * one_lam                # one_lam = round_shift(lam_q*ONE, 12)

    Returns ``(psi_unsaturated, q)``; the caller saturates ``psi`` to the
    register width and counts the event.
    """
    pred = round_shift((Q12_ONE - lam_q) * a_prev, Q12_BITS)
    v = psi + a - pred
    q = v > thr_lam
    return v - q * one_lam, q


@_op
def align_input(u_fwd, u_fb, sh_fwd, fb_mult, sh_fb, sh_out):
    """Bring the two summed-weight inputs to state units (S fraction bits).

    ``u_fwd``: sum of forward weights of the spikes received (2x2 sum-pool
    included), ``u_fb``: sum of feedback weights.  With per-layer constants
    from :func:`input_alignment`::

        in = round_shift((u_fwd << sh_fwd) + ((u_fb * fb_mult) << sh_fb), sh_out)

    One rounding.  Unsaturated; the caller saturates to the register width.
    """
    return round_shift((u_fwd << sh_fwd) + ((u_fb * fb_mult) << sh_fb), sh_out)


@_op
def decoder_step(dec, inp, lam_q):
    """Decaying decoder ``dec' = dec + lam (in - dec)`` = ``(1-lam) dec + lam in``.

    ``dec + round_shift(lam_q * (in - dec), 12)``; unsaturated.
    """
    return dec + round_shift(lam_q * (inp - dec), Q12_BITS)


@_op
def nudge_term(s, target, beta_q):
    """Local nudge at the output, ``beta (y - s)``: ``round_shift(beta_q*(y-s), 12)``.

    ``beta_q`` is signed (``+beta``, ``-beta`` or 0); ``target`` is ONE or 0.
    """
    return round_shift(beta_q * (target - s), Q12_BITS)


@_op
def state_step(s, drive, eps_q, one):
    """Euler step with clamp: ``s' = clamp(s + eps (drive - s), 0, ONE)``.

    ``s + round_shift(eps_q * (drive - s), 12)`` clamped to ``[0, ONE]``.  The
    clamp is the activation ``rho``, not an overflow, and is not counted.
    """
    return saturate(s + round_shift(eps_q * (drive - s), Q12_BITS), 0, one)


@_op
def trace_latch(s, trace_max, state_bits):
    """Trace register value of activation ``s``: ``round_shift(s*trace_max, S)``.

    ``trace_max = 2**trace_bits - 1`` so ``s = ONE`` latches exactly
    ``trace_max``; the register is ``trace_bits`` wide, unsigned, never
    overflows.
    """
    return round_shift(s * trace_max, state_bits)


# ------------------------------------------------------ counter-based random
@_op
def mul32(x, c):
    """``(x * c) mod 2**32`` for ``0 <= x, c < 2**32`` without int64 overflow."""
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & MASK32


@_op
def mix32(x):
    """32-bit avalanche hash (Wellons' ``lowbias32``); ``0 <= x < 2**32``."""
    x = x ^ (x >> 16)
    x = mul32(x, 0x21F0AAAD)
    x = x ^ (x >> 15)
    x = mul32(x, 0x735A2D97)
    x = x ^ (x >> 15)
    return x


@_op
def random_bits(seed, update, stream, index):
    """62 uniform random bits from a counter: no sequential state anywhere.

    ``seed`` (< 2**32), ``update`` (global update counter), ``stream``
    (``2 * layer + kind``, kind 0 weights / 1 biases) and ``index`` (flat
    index of the parameter in PyTorch layout, < 2**32) are chained through
    :func:`mix32`; two 31-bit words make the result.
    """
    h = mix32(seed & MASK32)
    h = mix32(h ^ (update & MASK32))
    h = mix32(h ^ (stream & MASK32))
    h1 = mix32(h ^ (index & MASK32))
    h2 = mix32(h1 ^ 0x9E3779B9)
    return ((h1 & 0x7FFFFFFF) << 31) | (h2 & 0x7FFFFFFF)


@_op
def stochastic_shift(num, k, rnd62):
    """Stochastic rounding of ``num / 2**k`` with the top ``k`` of 62 random bits.

    ``(num + (rnd62 >> (62 - k))) >> k`` rounds up with probability equal to
    the discarded fraction, so the result is unbiased; ``k`` in ``[0, 62]``.
    """
    if k > 0:
        return (num + (rnd62 >> (RANDOM_BITS - k))) >> k
    return num << (-k)


# -------------------------------------------------- constants (host, Python)
def q12(value: float) -> int:
    """A real constant in ``[0, 1]`` as a Q12 integer (round to nearest)."""
    return int(math.floor(value * Q12_ONE + 0.5))


def lr_constants(factor: float, mantissa_bits: int = LR_MANTISSA_BITS) -> tuple[int, int]:
    """``factor ~= mantissa / 2**shift`` with a ``mantissa_bits`` mantissa.

    ``shift`` is clipped to ``[0, 62]`` (the random word's width); a factor
    too small for that gives a smaller mantissa, a zero factor gives (0, 0).
    """
    if factor <= 0.0:
        return 0, 0
    shift = mantissa_bits - 1 - math.floor(math.log2(factor))
    shift = max(0, min(RANDOM_BITS, shift))
    mantissa = int(math.floor(factor * (1 << shift) + 0.5))
    if mantissa >= (1 << 31):
        raise ValueError(f"learning-rate factor {factor} needs a mantissa of {mantissa}")
    return mantissa, shift


def input_alignment(w_exp: int, pool_shift: int, fb_exp: int | None,
                    state_bits: int) -> tuple[int, int, int]:
    """Shifts ``(sh_fwd, sh_fb, sh_out)`` for :func:`align_input`.

    Forward weights have ``w_exp + pool_shift`` fraction bits (the 2x2 average
    pool's 1/4 is ``pool_shift = 2``), feedback weights times a Q12 multiplier
    have ``fb_exp + 12``.  Both are left-shifted to ``G`` fraction bits, the
    largest of the three, then rounded once to ``S``.
    """
    g = max(w_exp + pool_shift, state_bits, (fb_exp + Q12_BITS) if fb_exp is not None else 0)
    sh_fb = (g - fb_exp - Q12_BITS) if fb_exp is not None else 0
    return g - w_exp - pool_shift, sh_fb, g - state_bits


# ------------------------------------------------ pure-Python twins of the ops
def pure_twins(namespace: dict, module: str) -> types.SimpleNamespace:
    """Plain-Python twins of the ops (``@_op`` functions) a module defines.

    ``namespace``: the module's ``globals()``; ``module``: its ``__name__``.
    Each twin runs the op's ``py_func`` code object with every op it calls
    (its own module's, or this module's imported by name) bound to a twin,
    so the whole composite runs on NumPy arrays and PyTorch tensors.
    """
    bound = dict(namespace)
    for name, obj in namespace.items():      # ops imported from numerics: their twins
        f = getattr(obj, "py_func", None)
        if isinstance(f, types.FunctionType) and f.__module__ == __name__ and module != __name__:
            bound[name] = getattr(pure, f.__name__)
    twins = {}
    for name, obj in namespace.items():
        f = getattr(obj, "py_func", None)
        if isinstance(f, types.FunctionType) and f.__module__ == module:
            t = types.FunctionType(f.__code__, bound, f.__name__, f.__defaults__, f.__closure__)
            t.__doc__, t.__qualname__ = f.__doc__, f.__qualname__
            twins[name] = t
    bound.update(twins)
    return types.SimpleNamespace(**twins)


pure = pure_twins(globals(), __name__)
"""Plain-Python twins of every op (NumPy arrays, PyTorch tensors, Python ints)."""

"""The integer rules of :mod:`neurochip.numerics`, callable on PyTorch tensors.

A thin alias of :data:`neurochip.numerics.pure`: each op runs the very same
code object as the Numba-compiled rule (``ops.encoder_step.__code__ is
numerics.encoder_step.py_func.__code__``), with its helpers bound to their
pure twins.  No rule is rewritten here.

Usage: ``from reference import ops; ops.encoder_step(psi, a, a_prev, ...)``.
"""
from __future__ import annotations

from neurochip import numerics as _nx

OPS: dict = dict(vars(_nx.pure))


def twin(op):
    """The tensor-callable twin of a :mod:`neurochip.numerics` op (dispatcher or name)."""
    name = op if isinstance(op, str) else op.py_func.__name__
    return OPS[name]


globals().update(OPS)
__all__ = ["OPS", "twin"] + sorted(OPS)

"""``python benchmarks/speed.py``: the speed benchmark (its sections live in ``benchmarks/speed/``).

See :mod:`benchmarks.speed` for the sections and ``--help`` for the flags.
"""
import os
import sys

# PyTorch's OpenMP threads spin while they wait; on a shared machine that collapses
# (peers.md: 215 -> 45-50 ms per sample at load 4); set before torch or Numba start
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.speed.cli import main  # noqa: E402  (the package, not this file)

if __name__ == "__main__":
    sys.exit(main())

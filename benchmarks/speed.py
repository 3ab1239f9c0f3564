"""``python benchmarks/speed.py``: the speed benchmark (its sections live in ``benchmarks/speed/``).

See :mod:`benchmarks.speed` for the sections and ``--help`` for the flags.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.speed.cli import main  # noqa: E402  (the package, not this file; it sets
#                                                   the OpenMP wait policy before torch/Numba)

if __name__ == "__main__":
    sys.exit(main())

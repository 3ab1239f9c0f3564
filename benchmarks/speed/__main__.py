"""``python -m benchmarks.speed``: the same as ``python benchmarks/speed.py``."""
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # see benchmarks/speed.py

from .cli import main  # noqa: E402

sys.exit(main())

"""``python -m benchmarks.speed``: the same as ``python benchmarks/speed.py``."""
import sys

from .cli import main  # the package sets the OpenMP wait policy first

sys.exit(main())

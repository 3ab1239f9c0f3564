"""``python -m benchmarks.speed``: the same as ``python benchmarks/speed.py``."""
import sys

from .cli import main

sys.exit(main())

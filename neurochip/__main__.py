"""``python -m neurochip`` is ``python -m neurochip.run``."""
import sys

from .run import main

sys.exit(main())

"""Paths the tests share: the checkout and the data beside it."""
from __future__ import annotations

import os
from pathlib import Path

#: the repository root (the folder holding ``neurochip/``)
ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout (where CI and the developers keep it), or NEUROCHIP_TEST_DATA
SHARED = Path(os.environ.get("NEUROCHIP_TEST_DATA", ROOT.parent / "shared" / "data"))

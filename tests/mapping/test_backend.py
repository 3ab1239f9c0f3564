"""``--backend lava``: the command line trains through the Lava processes (registry plug-in)
and ends with the core's integers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from neurochip import registry
from tests.paths import ROOT

pytest.importorskip("lava.magma.core.process.process")


def test_lava_backend_is_registered():
    from mapping.backend import LavaBackend
    assert registry.get("neurochip.backends", "lava") is LavaBackend


@pytest.mark.timeout(600)
def test_cli_backend_lava_equals_numba(tmp_path):
    small = ["--epochs", "1", "--train-samples", "4", "--test-samples", "2", "--batch-size", "2",
             "--t1", "6", "--t2", "2", "--quiet"]
    out = {}
    for name in ("numba", "lava"):
        path = tmp_path / f"{name}.json"
        r = subprocess.run([sys.executable, "-m", "neurochip.run", *small, "--backend", name,
                            "--json", str(path)], capture_output=True, text=True, cwd=ROOT,
                           timeout=540)
        assert r.returncode == 0, r.stderr[-3000:]
        out[name] = json.loads(path.read_text())
    a, b = out["numba"], out["lava"]
    assert b["backend"] == "lava" and b["updates"] == a["updates"] == 2
    for key in ("weights_sha256", "test_error", "counts", "history"):
        if key == "history":
            strip = [[{k: v for k, v in e.items() if k != "seconds"} for e in r["history"]] for r in (a, b)]
            assert strip[0] == strip[1]
        else:
            assert a[key] == b[key], key

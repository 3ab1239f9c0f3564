"""docs/models/: every committed checkpoint, loaded the way a reader would
(``python -m neurochip.run --load docs/models/NAME.npz --dataset D --data-dir DIR --json out.json``),
gives exactly the test error recorded in docs/models/models.json.

The recorded whole-test-set figure (the one docs/results.md reports) was checked by
``python -m experiments.headline ... --publish docs/models``, which refuses to record a figure that
``--load`` does not reproduce; here the first ``check.test_samples`` test images are re-evaluated
(the whole set takes minutes on two cores)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import ROOT, SHARED

MODELS = ROOT / "docs" / "models"
INDEX = json.loads((MODELS / "models.json").read_text())


def test_the_interface_files_exist():
    names = set(INDEX)
    assert any(n.startswith("mnist-") and n.endswith(".npz") for n in names)
    assert any(n.startswith("fmnist-") and n.endswith(".npz") for n in names)
    for name, entry in INDEX.items():
        assert (MODELS / name).is_file(), name
        assert entry["dataset"] in ("mnist", "fashion-mnist")
        assert entry["test_samples"] == 10000 and 0 <= entry["test_error"] < 1


@pytest.mark.parametrize("name", sorted(INDEX))
def test_load_reproduces_the_recorded_test_error(name, tmp_path):
    entry = INDEX[name]
    data = SHARED / entry["dataset"]
    if not (data / "t10k-images-idx3-ubyte.gz").exists() and not (data / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"{entry['dataset']} IDX files not in {data}")
    out = tmp_path / "out.json"
    subprocess.run([sys.executable, "-m", "neurochip.run", "--load", str(MODELS / name),
                    "--dataset", entry["dataset"], "--data-dir", str(data), "--json", str(out),
                    "--test-samples", str(entry["check"]["test_samples"]), "--quiet"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=900)
    r = json.loads(out.read_text())
    assert r["test_error"] == entry["check"]["test_error"]
    assert r["weights_sha256"] == entry["weights_sha256"]

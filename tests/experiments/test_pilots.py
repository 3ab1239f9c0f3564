"""experiments.pilots: each pilot's validation error, budget flags replaced by a pilot's own."""
from __future__ import annotations

import json

import pytest

from experiments import pilots

CONFIG = {"name": "tiny", "common": ["--preset", "digits", "--dataset", "digits"],
          "budget": ["--train-samples", "100", "--val-split", "40", "--test-samples", "1",
                     "--epochs", "1", "--seed", "0"],
          "runs": {"T2 10": [], "T2 5, 2 epochs": ["--t2", "5", "--epochs", "2"]}}


def test_pilots_table_and_cache(tmp_path, monkeypatch, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CONFIG))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert pilots.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    res = json.loads((out / "tiny.json").read_text())
    assert res["missing_runs"] == 0
    two = res["runs"]["T2 5, 2 epochs"]
    assert two["argv"].count("--epochs") == 1 and two["argv"][two["argv"].index("--epochs") + 1] == "2"
    assert len(two["history"]) == 2 and len(res["runs"]["T2 10"]["history"]) == 1
    md = (out / "tiny.md").read_text()
    for r in res["runs"].values():
        assert f"**{100 * r['val_error']:.2f}**" in md
    from neurochip import run as run_mod
    monkeypatch.setattr(run_mod, "run", lambda *a, **k: pytest.fail("re-ran a cached pilot"))
    assert pilots.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    capsys.readouterr()


def test_budget_needs_a_validation_split(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**CONFIG, "budget": ["--epochs", "1"]}))
    with pytest.raises(SystemExit) as exc:
        pilots.load_config(str(path), None)
    assert exc.value.code == 2          # bad input: one line, exit code 2

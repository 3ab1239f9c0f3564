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
    assert "| T2 10 | none |" in md and "| T2 5, 2 epochs | `--t2 5 --epochs 2` |" in md
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


def test_real_valued_pilots_train_the_twin_and_are_cached_apart(tmp_path, monkeypatch, capsys):
    """``"model": "real"``: every pilot is experiments.real_run with the same flags, so its
    validation error is the real-valued twin's on the integer pilot's images, split and order;
    its cache key differs from an integer run with the same flags."""
    from experiments import protocol, real_run
    cfg = {"name": "twin", "model": "real", "common": ["--preset", "digits", "--dataset", "digits"],
           "budget": CONFIG["budget"],
           "runs": {"x1": ["--lrs", "0.2,0.05"], "x0.5": ["--lrs", "0.1,0.025"]}}
    path = tmp_path / "twin.json"
    path.write_text(json.dumps(cfg))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert pilots.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    res = json.loads((out / "twin.json").read_text())
    assert res["missing_runs"] == 0 and set(res["runs"]) == {"x1", "x0.5"}
    # the same figures as the twin trained directly with the pilot's flags
    argv = res["runs"]["x1"]["argv"]
    direct = tmp_path / "direct.json"
    assert real_run.main(argv + ["--state", str(tmp_path / "direct.npz"), "--json", str(direct)]) == 0
    assert json.loads(direct.read_text())["best"]["val_error"] == res["runs"]["x1"]["val_error"]
    assert res["runs"]["x1"]["spikes_per_sample"] is None and res["runs"]["x1"]["updates"] == 3
    assert protocol.run_key(argv, "real") != protocol.run_key(argv)
    assert (cache / (protocol.run_key(argv, "real") + ".json")).exists()
    assert not (cache / (protocol.run_key(argv) + ".json")).exists()
    md = (out / "twin.md").read_text()
    assert "real-valued twin" in md and f"**{100 * res['runs']['x0.5']['val_error']:.2f}**" in md
    monkeypatch.setattr(real_run, "main", lambda *a, **k: pytest.fail("re-ran a cached pilot"))
    assert pilots.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    assert pilots.main([str(path), "--out", str(out), "--cache", str(cache), "--report-only"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("change, named", [({"model": "float"}, "'model'"),
                                           ({"runs": {"a": ["--lrs", "0.1,0.1", "--bits", "8"]}}, "--bits"),
                                           ({"runs": {"a": []}}, "--lrs")])
def test_a_real_valued_configuration_is_checked(tmp_path, capsys, change, named):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**CONFIG, "model": "real", **change}))
    with pytest.raises(SystemExit) as exc:
        pilots.load_config(str(path), None)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err, err

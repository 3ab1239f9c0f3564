"""The fair-comparison protocol (experiments.protocol) on the embedded digits, tiny budgets."""
from __future__ import annotations

import json
import os

import pytest

from experiments import protocol

CONFIG = {
    "name": "tiny", "title": "tiny digits comparison",
    "common": ["--preset", "digits", "--dataset", "digits", "--test-samples", "20"],
    "arms": {"T2=10": [], "T2=5": ["--t2", "5"]},
    "lr_factors": [1, 0.25],
    "sweep": {"flags": ["--train-samples", "100", "--val-split", "40", "--epochs", "1"], "seed": 0},
    "full": {"flags": ["--train-samples", "100", "--val-split", "40", "--epochs", "2"],
             "seeds": [0, 1, 2]},
}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def test_whole_comparison_then_fully_cached(config, tmp_path, monkeypatch, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert protocol.main([config, "--out", str(out), "--cache", str(cache)]) == 0
    res = json.loads((out / "tiny.json").read_text())
    md = (out / "tiny.md").read_text()
    assert (out / "tiny.png").stat().st_size > 1000
    for arm in ("T2=10", "T2=5"):
        a = res["arms"][arm]
        assert a["base_lrs"] == [0.2, 0.05]
        sweep = {float(f): s for f, s in a["sweep"].items()}
        assert set(sweep) == {1.0, 0.25}
        chosen = a["chosen_factor"]
        assert sweep[chosen]["val_error"] == min(s["val_error"] for s in sweep.values())
        assert set(a["full"]) == {"0", "1", "2"}
        tests = [a["full"][s]["test_error"] for s in ("0", "1", "2")]
        m, sd = a["test_error_mean_std"]
        assert m == pytest.approx(sum(tests) / 3)
        assert f"{100 * m:.2f} ± {100 * sd:.2f}" in md
        # the chosen rates reached the runs, and each full run evaluated its best weights
        for s in ("0", "1", "2"):
            argv = a["full"][s]["argv"]
            assert argv[argv.index("--lrs") + 1] == protocol.scaled([0.2, 0.05], chosen)
            assert argv[argv.index("--seed") + 1] == s
    assert res["arms"]["T2=5"]["full"]["0"]["argv"].count("--t2") == 1
    # a second call trains nothing: every run comes from the cache
    from neurochip import run as run_mod
    monkeypatch.setattr(run_mod, "run", lambda *a, **k: pytest.fail("re-ran a cached run"))
    assert protocol.main([config, "--out", str(out), "--cache", str(cache)]) == 0
    assert json.loads((out / "tiny.json").read_text())["arms"] == res["arms"]
    capsys.readouterr()


def test_an_interrupted_run_resumes_from_its_checkpoint(config, tmp_path, monkeypatch, capsys):
    """A run killed after its first checkpoints continues from them with the same result."""
    cfg = protocol.load_config(config, None)
    argv = protocol.run_argv(cfg, "T2=10", "full", 1.0, 0)
    ref = protocol.run_once(argv, str(tmp_path / "a"), 1, lambda *a: None)
    # the same run, stopped at update 3 by a signal-like stop, then resumed
    import neurochip.trainer as trainer_mod
    real = trainer_mod.train_epoch
    calls = {"n": 0}

    def stop_after_three(*args, **kw):
        on_batch = args[7]

        def wrapped(i, step, wrong):
            on_batch(i, step, wrong)
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return real(*args[:7], wrapped, *args[8:], **kw)
    monkeypatch.setattr(trainer_mod, "train_epoch", stop_after_three)
    cache = str(tmp_path / "b")
    with pytest.raises(RuntimeError):
        protocol.run_once(argv, cache, 1, lambda *a: None)
    key = protocol.run_key(argv)
    assert os.path.exists(os.path.join(cache, key + ".npz"))
    assert not os.path.exists(os.path.join(cache, key + ".json"))
    monkeypatch.setattr(trainer_mod, "train_epoch", real)
    msgs = []
    got = protocol.run_once(argv, cache, 1, msgs.append)
    assert any("resuming" in m for m in msgs)
    for k in ("weights_sha256", "test_error", "best", "learning_health", "history"):
        strip = (lambda h: [{kk: v for kk, v in e.items() if kk != "seconds"} for e in h]) \
            if k == "history" else (lambda v: v)
        assert strip(got[k]) == strip(ref[k]), k
    capsys.readouterr()


def test_config_without_validation_split_is_refused(tmp_path, capsys):
    bad = dict(CONFIG, sweep={"flags": ["--epochs", "1"], "seed": 0})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(SystemExit) as exc:
        protocol.load_config(str(path), None)
    assert exc.value.code == 2 and "--val-split" in capsys.readouterr().err
    few = dict(CONFIG, full=dict(CONFIG["full"], seeds=[0, 1]))
    path.write_text(json.dumps(few))
    with pytest.raises(SystemExit) as exc:
        protocol.load_config(str(path), None)
    assert exc.value.code == 2 and "3 seeds" in capsys.readouterr().err


def test_a_run_another_process_holds_is_skipped_then_waited_for(config, tmp_path):
    """wait=False returns None while the run's lock is held elsewhere."""
    import fcntl
    cfg = protocol.load_config(config, None)
    argv = protocol.run_argv(cfg, "T2=10", "sweep", 1.0, 0)
    cache = tmp_path / "c"
    cache.mkdir()
    with open(cache / (protocol.run_key(argv) + ".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert protocol.run_once(argv, str(cache), 50, lambda *a: None, wait=False) is None
    r = protocol.run_once(argv, str(cache), 50, lambda *a: None, wait=False)
    assert r is not None and r["argv"] == argv


def test_route_diagnostic_of_a_protocol_comparison(tmp_path, capsys):
    """experiments.pooling --from-protocol reads each arm's seed-0 checkpoint (best weights)."""
    from experiments import pooling
    cfg = dict(CONFIG, name="pools", arms={"avg-pool": ["--pool", "avg"], "max-pool": ["--pool", "max"]},
               common=["--preset", "digits-2c", "--dataset", "digits", "--test-samples", "20"],
               lr_factors=[1])
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(cfg))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert protocol.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    fig = tmp_path / "routes.png"
    res = tmp_path / "routes.json"
    assert pooling.main(["--from-protocol", str(out / "pools.json"), "--cache", str(cache),
                         "--diag-samples", "4", "--figure", str(fig), "--out", str(res)]) == 0
    routes = json.loads(res.read_text())["routes"]
    assert {r["pool"] for r in routes} == {"avg-pool", "max-pool"} and fig.stat().st_size > 1000
    assert all(r["layer"] == 2 and r["fwd"] > 0 for r in routes)
    capsys.readouterr()


def test_report_only_tabulates_what_has_finished(config, tmp_path, capsys):
    cfg = protocol.load_config(config, None)
    cache = str(tmp_path / "cache")
    # two of the four sweep runs done: nothing chosen yet, everything else missing
    for f in (1, 0.25):
        protocol.run_once(protocol.run_argv(cfg, "T2=10", "sweep", f, 0), cache, 50, lambda *a: None)
    res = protocol.run_comparison(cfg, str(tmp_path / "out"), cache, report_only=True)
    assert res["arms"]["T2=10"]["chosen_factor"] is not None
    assert res["arms"]["T2=5"]["chosen_factor"] is None and res["arms"]["T2=5"]["sweep"] == {}
    assert res["missing_runs"] == 2 + 3 + 3       # T2=5's sweep, both arms' seeds
    md = protocol.markdown(res, "cmd")
    assert "Partial: 8 run(s)" in md
    # one seed of the chosen rate: tabulated with n=1
    a = res["arms"]["T2=10"]
    protocol.run_once(protocol.run_argv(cfg, "T2=10", "full", a["chosen_factor"], 1), cache, 50,
                      lambda *a: None)
    res = protocol.run_comparison(cfg, str(tmp_path / "out"), cache, report_only=True)
    assert list(res["arms"]["T2=10"]["full"]) == [1] and res["missing_runs"] == 7
    assert "(n=1)" in protocol.markdown(res, "cmd")
    capsys.readouterr()

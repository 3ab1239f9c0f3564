"""experiments.gap and experiments.real_run: integer arms and the real-valued twin on the same data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import gap, real_run

CONFIG = {"name": "tiny", "baseline": "8-bit",
          "common": ["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05",
                     "--train-samples", "200", "--test-samples", "60", "--val-split", "50",
                     "--epochs", "2"],
          "arms": {"8-bit": ["--bits", "8"],
                   "16-bit": ["--bits", "16", "--state-bits", "16", "--trace-bits", "16",
                              "--bias-bits", "24"]},
          "real": "real-valued", "seeds": [0, 1, 2]}


def test_gap_table(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(CONFIG))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert gap.main([str(path), "--out", str(out), "--cache", str(cache)]) == 0
    res = json.loads((out / "tiny.json").read_text())
    assert res["missing_runs"] == 0 and set(res["arms"]) == {"8-bit", "16-bit", "real-valued"}
    base = res["arms"]["8-bit"]["seeds"]
    for arm in ("16-bit", "real-valued"):
        a = res["arms"][arm]
        d = [a["seeds"][s]["test_error"] - base[s]["test_error"] for s in ("0", "1", "2")]
        assert a["minus_baseline_mean_std"][0] == pytest.approx(np.mean(d))
        assert a["minus_baseline_mean_std"][1] == pytest.approx(np.std(d, ddof=1))
    capsys.readouterr()


def test_real_run_resumes_per_epoch(tmp_path, capsys):
    args = ["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05", "--train-samples", "200",
            "--test-samples", "60", "--val-split", "50", "--seed", "1"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert real_run.main(args + ["--epochs", "2", "--state", str(a) + ".npz", "--json", str(a) + ".json"]) == 0
    assert real_run.main(args + ["--epochs", "1", "--state", str(b) + ".npz"]) == 0
    assert real_run.main(args + ["--epochs", "2", "--state", str(b) + ".npz", "--json", str(b) + ".json"]) == 0
    ra, rb = (json.loads(open(str(p) + ".json").read()) for p in (a, b))
    for key in ("history", "best", "test_error"):
        hist_a = ra[key] if key != "history" else [{k: v for k, v in h.items()} for h in ra[key]]
        hist_b = rb[key] if key != "history" else [{k: v for k, v in h.items()} for h in rb[key]]
        assert hist_a == hist_b, key
    za, zb = np.load(str(a) + ".npz"), np.load(str(b) + ".npz")
    assert all(np.array_equal(za[k], zb[k]) for k in za.files if k != "meta")
    # the validation split is the CLI's: disjoint from the training images it trains on
    from neurochip.validation_split import split_indices
    tr, va = split_indices(200, 50, 1)
    assert len(set(tr) & set(va)) == 0 and len(va) == 50
    capsys.readouterr()


def test_real_run_schedule_scales_every_rate(tmp_path, capsys, monkeypatch):
    """``step`` with gamma 0.5 per epoch: every layer's rate in epoch 2 is exactly half its rate in
    epoch 1 (the rates each update is applied with, recorded)."""
    from reference.real import RealModel
    applied = []
    original = RealModel.apply

    def record(self, grads, lrs=None):
        applied.append(list(lrs))
        return original(self, grads, lrs)
    monkeypatch.setattr(RealModel, "apply", record)
    args = ["--preset", "digits", "--dataset", "digits", "--train-samples", "200",
            "--test-samples", "60", "--val-split", "50", "--seed", "2"]
    a = str(tmp_path / "a.npz")
    assert real_run.main(args + ["--lrs", "0.2,0.05", "--epochs", "2", "--lr-schedule", "step",
                                 "--lr-step-epochs", "1", "--lr-gamma", "0.5", "--state", a,
                                 "--json", a + ".json"]) == 0
    per_epoch = len(applied) // 2
    assert per_epoch > 0 and len(applied) == 2 * per_epoch
    assert all(r == [0.2, 0.05] for r in applied[:per_epoch])
    assert all(r == [0.1, 0.025] for r in applied[per_epoch:])
    assert [h["lr_factor"] for h in json.loads(open(a + ".json").read())["history"]] == [1.0, 0.5]
    capsys.readouterr()


def test_real_run_until_epoch_stops_at_the_epochs_end(tmp_path, capsys):
    """``--until-epoch 1`` of a 2-epoch plan, then the plan: the same weights as one run."""
    args = ["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05", "--train-samples", "200",
            "--test-samples", "60", "--val-split", "50", "--seed", "0", "--epochs", "2",
            "--lr-schedule", "cosine"]
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    assert real_run.main(args + ["--state", a]) == 0
    assert real_run.main(args + ["--state", b, "--until-epoch", "1"]) == 0
    assert len(real_run.read_meta(b)["history"]) == 1
    rec = real_run.training_record(b)
    assert rec["epoch"] == 1 and rec["epochs"] == 2 and rec["best"]["epoch"] == 1
    assert real_run.main(args + ["--state", b]) == 0
    za, zb = np.load(a), np.load(b)
    assert all(np.array_equal(za[k], zb[k]) for k in za.files if k != "meta")
    assert real_run.read_meta(a)["history"] == real_run.read_meta(b)["history"]
    capsys.readouterr()


@pytest.mark.parametrize("change, named", [
    (["--lrs", "0.1,0.05"], "--lrs"), (["--seed", "1"], "--seed"), (["--val-split", "40"], "--val-split"),
    (["--preset", "digits", "--dtype", "float64"], "--dtype"), (["--threads", "2"], "--threads"),
    (["--lr-gamma", "0.25"], "--lr-schedule/--epochs"),
    (["--lr-schedule", "cosine", "--epochs", "3"], "--lr-schedule/--epochs"),
    (["--epochs", "1"], "--epochs 1")])
def test_real_run_refuses_a_state_trained_otherwise(tmp_path, capsys, change, named):
    """Resuming with another network, rates, data, split, seed, dtype or torch thread count, or a
    schedule that changes a finished epoch's rate factor: one line naming the flag, exit 2, the state
    unchanged."""
    base = {"--preset": "digits", "--dataset": "digits", "--lrs": "0.2,0.05", "--train-samples": "200",
            "--test-samples": "60", "--val-split": "50", "--seed": "0", "--epochs": "2",
            "--lr-schedule": "step", "--lr-step-epochs": "1", "--lr-gamma": "0.5"}
    state = str(tmp_path / "s.npz")
    flat = lambda d: [x for kv in d.items() for x in kv]          # noqa: E731
    assert real_run.main(flat(base) + ["--state", state]) == 0
    before = open(state, "rb").read()
    capsys.readouterr()
    mine = dict(base, **dict(zip(change[::2], change[1::2])))
    with pytest.raises(SystemExit) as exc:
        real_run.main(flat(mine) + ["--state", state])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err, err
    assert open(state, "rb").read() == before
    # the same rates written otherwise, and a longer plan that keeps the finished epochs' factors
    assert real_run.main(flat(dict(base, **{"--lrs": "0.20,0.050", "--epochs": "3"}))
                         + ["--state", state]) == 0
    assert [h["lr_factor"] for h in real_run.read_meta(state)["history"]] == [1.0, 0.5, 0.25]
    capsys.readouterr()


def test_two_drivers_share_the_runs(tmp_path):
    """Two gap drivers on one configuration: every run trained once, the same table from both."""
    import os
    import subprocess
    import sys
    cfg = dict(CONFIG, common=CONFIG["common"][:-1] + ["1"])         # one epoch
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(gap.__file__).rsplit("/experiments/", 1)[0]}
    drivers = [subprocess.Popen([sys.executable, "-m", "experiments.gap", str(path), "--out",
                                 str(tmp_path / f"out{k}"), "--cache", str(tmp_path / "cache")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for k in range(2)]
    errs = [d.communicate(timeout=600)[1] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], errs
    assert sum(e.count("real-valued run real-") for e in errs) == 3
    tables = [json.loads((tmp_path / f"out{k}" / "tiny.json").read_text())["arms"] for k in range(2)]
    assert tables[0] == tables[1] and tables[0]["real-valued"]["test_error_mean_std"]


def test_real_run_bad_schedule_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        real_run.main(["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05", "--epochs", "1",
                       "--val-split", "50", "--lr-schedule", "step", "--lr-gamma", "0",
                       "--state", str(tmp_path / "s.npz")])
    assert exc.value.code == 2 and "--lr-gamma" in capsys.readouterr().err


@pytest.mark.parametrize("bad, named", [(["--lrs", "0.2,x"], "--lrs"), (["--until-epoch", "0"], "--until-epoch")])
def test_real_run_bad_flags_are_one_line(tmp_path, capsys, bad, named):
    argv = ["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05", "--epochs", "1",
            "--val-split", "50", "--state", str(tmp_path / "s.npz")]
    with pytest.raises(SystemExit) as exc:
        real_run.main(argv + bad)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "s.npz").exists()
    # the same with a state to resume: still the flag's own line (not a comparison's traceback)
    assert real_run.main(argv + ["--until-epoch", "1"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        real_run.main(argv + bad)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err, err

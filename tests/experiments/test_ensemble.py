"""experiments.ensemble: one ensemble per seed from runs' checkpoints, checked against its members."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import neurochip as nc
from experiments import ensemble
from neurochip.cli.validation import carve_validation
from neurochip.run import run as run_cli

COMMON = ["--preset", "digits", "--train-samples", "300", "--test-samples", "60", "--epochs", "2",
          "--t1", "8", "--t2", "3", "--quiet"]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    for run, arch in (("a", "1x8x8:c32k3p1-f10"), ("b", "1x8x8:c16k3p1-f10")):
        for seed in (0, 1):
            path = root / run / f"seed{seed}.npz"
            path.parent.mkdir(exist_ok=True)
            assert run_cli(COMMON + ["--arch", arch, "--seed", str(seed), "--val-split", "60",
                                     "--save", str(path)]) == 0
    path = root / "other-split" / "seed0.npz"              # another validation split
    path.parent.mkdir()
    assert run_cli(COMMON + ["--seed", "0", "--val-split", "40", "--save", str(path)]) == 0
    return str(root)


def run_driver(state, *extra):
    return ensemble.main(["--state", state, "--runs", "a,b", "--seeds", "0,1", *extra])


def test_figures_against_the_members_summed_by_hand(state, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert run_driver(state, "--json", str(out), "--markdown", str(tmp_path / "e.md")) == 0
    res = json.loads(out.read_text())
    data = nc.load_dataset("digits").subset(300, 60)
    for entry in res["seeds"]:
        seed = entry["seed"]
        nets = [nc.load_checkpoint(os.path.join(state, run, f"seed{seed}.npz"), which="best")[0]
                for run in ("a", "b")]
        _, val_x, val_y = carve_validation(data, 60, seed)
        for images, labels, key in ((data.test_x, data.test_y, "test_error"), (val_x, val_y, "val_error")):
            total = sum(nc.output_states(net, nc.Dataset.from_arrays(data.train_x, data.train_y, images,
                                                                     labels, pixel_max=data.pixel_max))[0]
                        for net in nets)
            assert entry[key] == np.mean(np.argmax(total, axis=1) != labels)
        for member in entry["members"]:
            assert member["matches_record"] is True
            assert member["test_error"] == member["recorded_test_error"]
        assert entry["val_images"] == 60 and entry["test_images"] == 60
        assert entry["chip_cost"]["parameters"] == sum(m["parameters"] for m in entry["members"])
        assert entry["chip_cost"]["loihi_cores"] == sum(m["loihi_cores"] for m in entry["members"])
    each = [e["test_error"] for e in res["seeds"]]
    assert res["test_error"]["each"] == each and res["test_error"]["mean"] == pytest.approx(np.mean(each))
    assert res["test_error"]["std"] == pytest.approx(np.std(each, ddof=1))
    table = capsys.readouterr().out
    assert table == (tmp_path / "e.md").read_text() and "| 0 |" in table and "| 1 |" in table


def test_a_member_that_differs_from_its_record_exits_1_after_writing(state, tmp_path, monkeypatch):
    monkeypatch.setattr(ensemble, "recorded_test_error", lambda meta, which: 0.999)
    out = tmp_path / "e.json"
    assert run_driver(state, "--seeds", "0", "--json", str(out)) == 1
    assert json.loads(out.read_text())["seeds"][0]["members"][0]["matches_record"] is False


@pytest.mark.parametrize("args, message", [
    (["--runs", "a,other-split", "--seeds", "0"], "one validation split"),
    (["--runs", "a,missing", "--seeds", "0"], "no such checkpoint"),
    (["--runs", "a,b", "--seeds", "0,2"], "no such checkpoint"),
    (["--runs", "a,a"], "names a run twice"),
    (["--runs", ","], "at least one"),
    (["--runs", "a", "--seeds", "0,x"], "whole numbers"),
    (["--runs", "a", "--seeds", "1,1"], "distinct"),
    (["--runs", "a", "--threads", "-1"], "--threads"),
])
def test_bad_input_is_one_line_and_exit_2(state, args, message, capsys):
    with pytest.raises(SystemExit) as e:
        ensemble.main(["--state", state, *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_checkpoint_is_one_line_naming_it_once(state, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "seed0.npz").write_text("garbage")
    with pytest.raises(SystemExit) as e:
        ensemble.main(["--state", str(tmp_path), "--runs", "a", "--seeds", "0"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "not a neurochip checkpoint" in err and len(err.strip().splitlines()) == 1
    assert err.count(str(tmp_path / "a" / "seed0.npz")) == 1


def test_another_seed_inside_a_checkpoint_is_refused(state, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    os.symlink(os.path.join(state, "a", "seed1.npz"), tmp_path / "a" / "seed0.npz")
    with pytest.raises(SystemExit) as e:
        ensemble.main(["--state", str(tmp_path), "--runs", "a", "--seeds", "0"])
    assert e.value.code == 2 and "seed 1, not 0" in capsys.readouterr().err


def test_an_unwritable_output_is_one_line_and_leaves_what_was_there(state, tmp_path, capsys):
    out = tmp_path / "e.json"
    out.write_text("before")
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(SystemExit) as e:
        run_driver(state, "--seeds", "0", "--json", str(out), "--markdown", str(blocked / "x.md"))
    assert e.value.code == 2 and "cannot write" in capsys.readouterr().err
    assert json.loads(out.read_text())["seeds"][0]["seed"] == 0      # written whole before the table failed
    assert not (blocked / "x.md").exists()

"""experiments.headline: seeds advanced round-robin in pieces, bit-identical to one uninterrupted run."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments import headline
from neurochip.checkpoint import load_checkpoint
from neurochip.run import run as run_cli

# slow enough per epoch (T1 200) that the driver stops a piece inside the next epoch
FLAGS = ["--preset", "digits", "--t1", "200", "--train-samples", "400", "--test-samples", "40",
         "--val-split", "100", "--epochs", "3", "--lr-schedule", "cosine"]


def assert_same_as_one_command(flags, seed, checkpoint, tmp_path):
    """The driver's run at ``checkpoint``: latest and best-on-validation weights equal to
    the same run trained in one uninterrupted command."""
    direct = tmp_path / "direct.npz"
    assert run_cli(flags + ["--seed", str(seed), "--save", str(direct), "--quiet"]) == 0
    for which in ("last", "best"):
        a = load_checkpoint(str(direct), which=which)[0].weights_sha256()
        b = load_checkpoint(str(checkpoint), which=which)[0].weights_sha256()
        assert a == b, which


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"name": "tiny", "title": "tiny", "flags": FLAGS, "seeds": [0, 1, 2]}))
    return str(path)


def test_pieces_equal_the_uninterrupted_run(config, tmp_path, capsys):
    state = tmp_path / "state"
    assert headline.main([config, "--state", str(state), "--until-epoch", "1"]) == 0
    done = {s: headline.epochs_done(str(state / "tiny" / f"seed{s}.npz")) for s in (0, 1, 2)}
    assert all(d >= 1 for d in done.values()), done
    # the rest by two drivers at once (one lock per run): each run is trained by one of them
    env = {**os.environ, "PYTHONPATH": str(headline.__file__).rsplit("/experiments/", 1)[0]}
    drivers = [subprocess.Popen([sys.executable, "-m", "experiments.headline", config, "--state", str(state)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    assert [d.wait(timeout=600) for d in drivers] == [0, 0]
    log = json.loads((state / "tiny" / "log.json").read_text())["pieces"]
    assert {p["seed"] for p in log} == {0, 1, 2} and all(p["wall_seconds"] > 0 for p in log)
    assert_same_as_one_command(FLAGS, 1, state / "tiny" / "seed1.npz", tmp_path)
    # the report: every seed's per-epoch history and the mean over seeds
    out = tmp_path / "report"
    assert headline.main([config, "--state", str(state), "--report", str(out)]) == 0
    res = json.loads((out / "tiny.json").read_text())
    assert set(res["seeds"]) == {"0", "1", "2"}
    for s in res["seeds"].values():
        assert s["epochs"] == 3 and len(s["history"]) == 3
        assert s["best_test_error"] == s["history"][s["best"]["epoch"] - 1]["test_error"]
    assert "best_test_error_mean_std" in res and (out / "tiny.png").stat().st_size > 1000
    eq = res["equal_epochs"]
    assert eq["epoch"] == 3 and {s: v["test_error"] for s, v in eq["seeds"].items()} == \
        {s: v["best_test_error"] for s, v in res["seeds"].items()}
    md = (out / "tiny.md").read_text()
    assert "Partial" not in md
    # the hidden activity of each seed: its best-on-validation epoch against the latest
    for s in res["seeds"].values():
        a = s["activity"]
        assert (a["best_epoch"], a["latest_epoch"]) == (s["best"]["epoch"], 3)
        assert a["latest"] == s["history"][2]["val_spikes_per_sample"] and len(a["ratios"]) == 2
    assert "Hidden activity: free-phase spikes per validation sample" in md
    # publishing: the best seed on validation, re-evaluated by --load to the recorded figure
    models = tmp_path / "models"
    assert headline.main([config, "--state", str(state), "--publish", str(models)]) == 0
    entry = json.loads((models / "models.json").read_text())["tiny.npz"]
    seed = min(res["seeds"], key=lambda s: (res["seeds"][s]["best"]["val_error"], int(s)))
    assert entry["seed"] == int(seed)
    assert entry["test_error"] == res["seeds"][seed]["best_test_error"]
    assert entry["check"]["test_samples"] == min(headline.CHECK_SAMPLES, entry["test_samples"])
    capsys.readouterr()


def test_config_needs_split_epochs_and_three_seeds(tmp_path):
    for bad in ({"name": "x", "flags": ["--epochs", "2"], "seeds": [0, 1, 2]},
                {"name": "x", "flags": ["--val-split", "10"], "seeds": [0, 1, 2]},
                {"name": "x", "flags": ["--val-split", "10", "--epochs", "2"], "seeds": [0, 1]},
                {"name": "x", "flags": ["--val-split", "10", "--epochs", "2", "--seed", "3"],
                 "seeds": [0, 1, 2]}):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(SystemExit) as exc:
            headline.load_config(str(path), None)
        assert exc.value.code == 2      # bad input: one line, exit code 2


def test_log_keeps_both_drivers_pieces_and_the_machine(tmp_path):
    """Two drivers' Log objects made before either writes: neither piece is lost."""
    path = str(tmp_path / "run" / "log.json")
    a, b = headline.Log(path), headline.Log(path)
    a.add({"seed": 0, "to_epoch": 1})
    b.add({"seed": 1, "to_epoch": 1})
    pieces = json.loads(open(path).read())["pieces"]
    assert [p["seed"] for p in pieces] == [0, 1]
    assert all(p["machine"].endswith(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
               for p in pieces)


def test_a_continuing_configuration_starts_from_the_finished_parent(tmp_path, capsys):
    """``continues``: each seed starts from the parent's finished checkpoint (read, never written)
    and ends bit for bit as the longer plan trained in one go; ``--seeds`` trains only those
    seeds; the report's wall time counts the parent's pieces too."""
    base_flags = ["--preset", "digits", "--train-samples", "160", "--test-samples", "20",
                  "--val-split", "40", "--epochs", "2", "--lr-schedule", "constant"]
    more_flags = base_flags[:-4] + ["--epochs", "3", "--lr-schedule", "step", "--lr-step-epochs", "2",
                                    "--lr-gamma", "0.25"]
    base, more = tmp_path / "base.json", tmp_path / "more.json"
    base.write_text(json.dumps({"name": "base", "flags": base_flags, "seeds": [0, 1, 2]}))
    more.write_text(json.dumps({"name": "more", "continues": "base", "flags": more_flags,
                                "seeds": [0, 1, 2]}))
    state = tmp_path / "state"
    assert headline.main([str(base), "--state", str(state), "--seeds", "1"]) == 0
    assert sorted(p.name for p in (state / "base").glob("seed*.npz")) == ["seed1.npz"]
    parent = (state / "base" / "seed1.npz").read_bytes()
    with pytest.raises(SystemExit) as exc:                 # seed 0's parent run does not exist
        headline.main([str(more), "--state", str(state), "--seeds", "0"])
    assert exc.value.code == 2 and "is not finished" in capsys.readouterr().err
    assert headline.main([str(more), "--state", str(state), "--seeds", "1"]) == 0
    assert (state / "base" / "seed1.npz").read_bytes() == parent
    assert_same_as_one_command(more_flags, 1, state / "more" / "seed1.npz", tmp_path)
    out = tmp_path / "report"
    assert headline.main([str(more), "--state", str(state), "--report", str(out)]) == 0
    res = json.loads((out / "more.json").read_text())
    pieces = [p for n in ("base", "more")
              for p in json.loads((state / n / "log.json").read_text())["pieces"]]
    assert res["wall_seconds"]["1"] == pytest.approx(sum(p["wall_seconds"] for p in pieces))
    assert [h["lr_factor"] for h in res["seeds"]["1"]["history"]] == [1.0, 1.0, 0.25]
    for bad in ("x", "7"):
        with pytest.raises(SystemExit) as exc:
            headline.main([str(more), "--state", str(state), "--seeds", bad])
        assert exc.value.code == 2
    capsys.readouterr()


def test_a_chain_of_continuations_counts_every_ancestors_pieces(tmp_path):
    """``most`` continues ``more``, which continues ``base``: the report's wall time adds all three
    folders' pieces of each seed; a parent whose configuration is missing, or a cycle, ends the chain."""
    flags = ["--val-split", "10", "--epochs", "2"]
    chain = {"base": None, "more": "base", "most": "more", "loop-a": "loop-b", "loop-b": "loop-a",
             "orphan": "gone"}
    for name, parent in chain.items():
        cfg = {"name": name, "flags": flags, "seeds": [0, 1, 2], **({"continues": parent} if parent else {})}
        (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    (tmp_path / "notes.json").write_text("not json")          # other files in the folder are skipped
    load = lambda n: headline.load_config(str(tmp_path / f"{n}.json"), None)  # noqa: E731
    assert load("most")["lineage"] == ["most", "more", "base"]
    assert load("base")["lineage"] == ["base"]
    assert load("loop-a")["lineage"] == ["loop-a", "loop-b"]
    assert load("orphan")["lineage"] == ["orphan", "gone"]
    state = tmp_path / "state"
    seconds = {"base": (100.0, 7.0), "more": (20.0, 3.0), "most": (1.5, 0.25)}
    for name, (s0, s1) in seconds.items():
        log = headline.Log(str(state / name / "log.json"))
        log.add({"seed": 0, "wall_seconds": s0})
        log.add({"seed": 1, "wall_seconds": s1})
    res = headline.collect(load("most"), str(state))
    assert res["wall_seconds"] == {"0": 121.5, "1": 10.25}
    assert headline.collect(load("more"), str(state))["wall_seconds"] == {"0": 120.0, "1": 10.0}


def test_continues_must_name_another_configuration(tmp_path):
    path = tmp_path / "self.json"
    path.write_text(json.dumps({"name": "x", "continues": "x", "seeds": [0, 1, 2],
                                "flags": ["--val-split", "10", "--epochs", "2"]}))
    with pytest.raises(SystemExit) as exc:
        headline.load_config(str(path), None)
    assert exc.value.code == 2


def _seed(val, test, epochs=None):
    """A collected seed: per-epoch validation and test errors (fractions); train error on the fly
    0.5 in epoch 1, 0.4 in epoch 2, ..."""
    hist = [{"epoch": i + 1, "val_error": v, "test_error": t, "train_error_on_the_fly": 0.5 - i / 10}
            for i, (v, t) in enumerate(zip(val, test))]
    return {"epochs": len(hist) if epochs is None else epochs, "history": hist}


def test_versus_pairs_the_seeds_at_the_last_epoch_every_run_has():
    base = {"name": "a", "title": "a", "flags": [], "seeds": {
        0: _seed([0.30, 0.20, 0.25, 0.10], [0.31, 0.22, 0.26, 0.12]),
        1: _seed([0.40, 0.30, 0.30], [0.41, 0.33, 0.35]),       # a tie: the earlier epoch (2) wins
        2: _seed([0.50, 0.45, 0.40], [0.52, 0.44, 0.43]),
        5: _seed([0.1], [0.1])}}                                # not in the other configuration
    other = {"name": "b", "title": "b", "flags": [], "seeds": {
        0: _seed([0.28, 0.18, 0.19], [0.29, 0.21, 0.20]),
        1: _seed([0.35, 0.36, 0.20], [0.36, 0.30, 0.25]),
        2: _seed([0.60, 0.42, 0.41], [0.55, 0.46, 0.47])}}
    res = headline.versus([base, other])
    # epoch 4 of base seed 0 is past the last epoch every run has (3): not used
    assert res["epoch"] == 3 and res["seeds"] == [0, 1, 2] and res["baseline"] == "a"
    a, b = res["rows"]
    assert [a["seeds"][s]["best_epoch"] for s in (0, 1, 2)] == [2, 2, 3]
    assert [b["seeds"][s]["best_epoch"] for s in (0, 1, 2)] == [2, 3, 3]
    assert [a["seeds"][s]["test_error"] for s in (0, 1, 2)] == [0.22, 0.33, 0.43]
    d_val = [0.18 - 0.20, 0.20 - 0.30, 0.41 - 0.40]
    assert b["val_error_minus_baseline"] == pytest.approx(d_val)
    assert b["test_error_minus_baseline"] == pytest.approx([0.21 - 0.22, 0.25 - 0.33, 0.47 - 0.43])
    m = sum(d_val) / 3
    sd = (sum((d - m) ** 2 for d in d_val) / 2) ** 0.5
    assert b["val_error_minus_baseline_mean_std"] == pytest.approx((m, sd))
    assert "val_error_minus_baseline" not in a
    assert a["train_error_on_the_fly_last"] == pytest.approx([0.3, 0.3, 0.3])   # epoch 3, not 4
    # one seed only: its figures, paired, with no spread printed
    one = headline.versus([base, other], only={1})
    assert one["seeds"] == [1] and one["epoch"] == 3
    text = headline.versus_markdown(one, "cmd")
    assert "| `b` | 20.00 (3) | 20.00 | -10.00 (-10.00) | 25.00 | 25.00 | -8.00 | 30.00 |" in text
    rows = lambda t: [ln for ln in t.splitlines() if ln.startswith("| `")]  # noqa: E731
    assert not any("±" in ln for ln in rows(text))
    assert all("±" in ln for ln in rows(headline.versus_markdown(res, "cmd")))
    # epoch by epoch: the errors *in* each epoch (not the best so far), up to epoch 3
    assert [at["epoch"] for at in res["per_epoch"]] == [1, 2, 3]
    e3 = res["per_epoch"][2]["rows"]
    v_b3 = [0.19, 0.20, 0.41]
    m3 = sum(v_b3) / 3
    assert e3["b"]["val_error_mean_std"] == pytest.approx((m3, (sum((v - m3) ** 2 for v in v_b3) / 2) ** 0.5))
    d3 = [0.19 - 0.25, 0.20 - 0.30, 0.41 - 0.40]
    assert e3["b"]["val_error_minus_baseline_mean_std"][0] == pytest.approx(sum(d3) / 3)
    assert e3["a"]["test_error_mean_std"][0] == pytest.approx((0.26 + 0.35 + 0.43) / 3)
    assert e3["a"]["train_error_on_the_fly_mean_std"] == pytest.approx((0.3, 0.0))
    assert "val_error_minus_baseline_mean_std" not in e3["a"]
    assert "| 3 | `b` | 26.67 ± 12.42 | -5.00 ± 5.57 | 30.67 ± 14.36 | 30.00 ± 0.00 |" in \
        headline.versus_markdown(res, "cmd")


def _activity(best_epoch, latest_epoch, best, latest):
    from neurochip.health import ActivityRise
    return ActivityRise(best_epoch, latest_epoch, best, latest).as_dict()


def test_the_reports_show_the_hidden_activity_or_say_it_was_not_measured():
    steady, old = _seed([0.3, 0.2, 0.25], [0.3, 0.2, 0.3]), _seed([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    for i, h in enumerate(steady["history"]):
        h["val_spikes_per_sample"] = [1000.0 * (i + 1), 10.0]
    old["history"][2]["val_spikes_per_sample"] = [9000.0, 50.0]     # the best (epoch 1) predates it
    steady.update(best={"epoch": 2}, best_test_error=0.2, activity=_activity(2, 3, [2000.0, 10.0],
                                                                             [3000.0, 10.0]))
    old.update(best={"epoch": 1}, best_test_error=0.1, activity=None)
    res = {"title": "t", "flags": [], "total_epochs": 3, "machine": "m", "wall_seconds": {},
           "seeds": {0: steady, 1: old}}
    md = headline.markdown(res, "cmd")
    assert "| 0 | 2: 2,000 / 10 | 3: 3,000 / 10 | 1.50 / 1.00 |" in md
    assert "| 1 | 1: not recorded (trained before the count existed) | - | not measured |" in md
    other = {"name": "b", "title": "b", "flags": [], "seeds": {0: {**steady, "rail_fractions": [0.0125, 0.5]},
                                                                1: old}}
    text = headline.versus_markdown(headline.versus([{**other, "name": "a"}, other]), "cmd")
    assert "| `b` | 1.50 / 1.00 (3 vs 2) | - |" in text
    assert "| `b` | 1.25 / 50.00 (3) | - |" in text                     # the rails beside it
    # no seed measured: no activity table at all
    bare = {"name": "c", "title": "c", "flags": [], "seeds": {0: _seed([0.1], [0.1])}}
    assert "Hidden activity" not in headline.versus_markdown(headline.versus([bare, bare]), "cmd")


def test_versus_needs_a_seed_in_common(tmp_path):
    a = {"name": "a", "title": "a", "flags": [], "seeds": {0: _seed([0.3], [0.3])}}
    b = {"name": "b", "title": "b", "flags": [], "seeds": {1: _seed([0.3], [0.3])}}
    with pytest.raises(SystemExit) as exc:
        headline.versus([a, b])
    assert exc.value.code == 2
    # a seed in common that has not finished an epoch: one line naming it, not a traceback
    c = {"name": "c", "title": "c", "flags": [], "seeds": {1: _seed([], [], epochs=0)}}
    with pytest.raises(SystemExit) as exc:
        headline.versus([b, c])
    assert exc.value.code == 2
    cfg = tmp_path / "a.json"
    cfg.write_text(json.dumps({"name": "a", "flags": ["--val-split", "10", "--epochs", "2"],
                               "seeds": [0, 1, 2]}))
    with pytest.raises(SystemExit) as exc:
        headline.main([str(cfg), "--versus", str(tmp_path / "out")])
    assert exc.value.code == 2


def test_stop_at_is_the_next_such_time_even_across_midnight():
    import datetime as dt
    utc = dt.timezone.utc
    evening = dt.datetime(2026, 12, 4, 22, 7, 53, tzinfo=utc)
    assert headline.next_utc("23:30", evening) == dt.datetime(2026, 12, 4, 23, 30, tzinfo=utc).timestamp()
    # already past today: tomorrow's, not "stop at once"
    assert headline.next_utc("00:40", evening) == dt.datetime(2026, 12, 5, 0, 40, tzinfo=utc).timestamp()
    assert headline.next_utc("22:07", evening) == dt.datetime(2026, 12, 5, 22, 7, tzinfo=utc).timestamp()


@pytest.mark.parametrize("bad", ["24:00", "7", "12:60", "ab:cd", "1:2:3", "-1:30", ""])
def test_stop_at_bad_text_is_one_line_exit_2(bad, capsys):
    import datetime as dt
    with pytest.raises(SystemExit) as e:
        headline.next_utc(bad, dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.timezone.utc))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--stop-at" in err and len(err.splitlines()) == 1


def test_figure_title_names_the_runs_weight_bits():
    res = {"name": "x", "seeds": {0: {}, 1: {}, 2: {}}, "total_epochs": 26}
    assert headline.figure_title({**res, "flags": ["--bits", "16", "--epochs", "26"]}) == \
        "x: 16-bit weights, 3 seeds (planned 26 epochs)"
    # without --bits: the CLI's default width
    assert headline.figure_title({**res, "flags": ["--epochs", "26"]}).startswith("x: 8-bit weights,")
    one_seed = {**res, "flags": ["--epochs", "26"], "seeds": {0: res["seeds"][0]}}
    assert headline.figure_title(one_seed) == "x: 8-bit weights, 1 seed (planned 26 epochs)"


REAL_FLAGS = ["--preset", "digits", "--dataset", "digits", "--lrs", "0.2,0.05", "--train-samples", "200",
              "--test-samples", "60", "--val-split", "50", "--epochs", "2", "--lr-schedule", "cosine"]


def test_a_real_valued_configuration_is_advanced_and_compared(tmp_path, capsys):
    """``"model": "real"``: the driver advances experiments.real_run one epoch per piece (the same
    state as one uninterrupted run), reports it, sets it beside an integer configuration with
    ``--versus`` and refuses to publish it."""
    from experiments import real_run
    import numpy as np
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"name": "twin", "model": "real", "flags": REAL_FLAGS, "seeds": [0, 1, 2]}))
    core = tmp_path / "core.json"
    core_flags = [f for f in REAL_FLAGS if f not in ("--lrs", "0.2,0.05")]
    core.write_text(json.dumps({"name": "core", "flags": core_flags, "seeds": [0, 1, 2]}))
    state = tmp_path / "state"
    assert headline.main([str(real), "--state", str(state), "--until-epoch", "1"]) == 0
    assert [headline.epochs_done(str(state / "twin" / f"seed{s}.npz")) for s in (0, 1, 2)] == [1, 1, 1]
    assert headline.main([str(real), str(core), "--state", str(state)]) == 0
    pieces = json.loads((state / "twin" / "log.json").read_text())["pieces"]
    assert sorted((p["seed"], p["to_epoch"]) for p in pieces) == [(s, e) for s in (0, 1, 2) for e in (1, 2)]
    assert {p["outcome"] for p in pieces if p["to_epoch"] == 2} == {"done"}
    direct = str(tmp_path / "direct.npz")
    assert real_run.main(REAL_FLAGS + ["--seed", "1", "--state", direct]) == 0
    za, zb = np.load(direct), np.load(str(state / "twin" / "seed1.npz"))
    assert all(np.array_equal(za[k], zb[k]) for k in za.files if k != "meta")
    out = tmp_path / "out"
    assert headline.main([str(real), "--state", str(state), "--report", str(out)]) == 0
    res = json.loads((out / "twin.json").read_text())
    assert res["model"] == "real" and all(s["epochs"] == 2 for s in res["seeds"].values())
    assert "best_test_error_mean_std" in res and (out / "twin.png").stat().st_size > 1000
    assert headline.main([str(core), str(real), "--state", str(state), "--versus", str(out)]) == 0
    vs = json.loads((out / "versus-core-twin.json").read_text())
    assert vs["epoch"] == 2 and [r["name"] for r in vs["rows"]] == ["core", "twin"]
    assert (out / "versus-core-twin.png").stat().st_size > 1000 and len(vs["per_epoch"]) == 2
    # the integer run's latest weights at the ends of their range, per layer; none for the twin
    from neurochip.health import rail_fractions
    net = load_checkpoint(str(state / "core" / "seed2.npz"), which="last")[0]
    lo, hi = net.constants().w_range
    expected = [float(((w == lo) | (w == hi)).mean()) for w in net.weights_q]
    assert vs["rows"][0]["rail_fractions_latest"]["2"] == pytest.approx(expected)
    assert rail_fractions(net.weights_q, (lo, hi)) == pytest.approx(expected)
    assert vs["rows"][1]["rail_fractions_latest"] == {"0": None, "1": None, "2": None}
    twin = real_run.read_meta(str(state / "twin" / "seed0.npz"))["history"]
    b = min(range(2), key=lambda i: (twin[i]["val_error"], i))
    assert vs["rows"][1]["seeds"]["0"]["test_error"] == twin[b]["test_error"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        headline.main([str(real), "--state", str(state), "--publish", str(tmp_path / "models")])
    assert exc.value.code == 2 and "integer core" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
    # a real-valued configuration cannot continue an integer run: one line, nothing copied
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps({"name": "mixed", "model": "real", "continues": "core", "seeds": [0, 1, 2],
                                 "flags": REAL_FLAGS[:-4] + ["--epochs", "3", "--lr-schedule", "cosine"]}))
    with pytest.raises(SystemExit) as exc:
        headline.main([str(mixed), "--state", str(state)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "its own model" in err, err
    assert not (state / "mixed" / "seed0.npz").exists()


@pytest.mark.parametrize("extra, named", [({"model": "float"}, "'model'"),
                                          ({"model": "real", "flags": ["--val-split", "10", "--epochs", "2"]},
                                           "--lrs")])
def test_a_configurations_model_is_checked(tmp_path, capsys, extra, named):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"name": "c", "flags": ["--val-split", "10", "--epochs", "2"],
                               "seeds": [0, 1, 2], **extra}))
    with pytest.raises(SystemExit) as exc:
        headline.main([str(cfg), "--state", str(tmp_path / "state")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err, err


def test_figure_title_names_a_real_valued_runs_dtype():
    res = {"name": "x", "seeds": {0: {}, 1: {}, 2: {}}, "total_epochs": 26, "model": "real"}
    assert headline.figure_title({**res, "flags": ["--epochs", "26"]}) == \
        "x: real-valued float32 weights, 3 seeds (planned 26 epochs)"

"""Reliability of the command: kill/interrupt and resume, saturations reported, timing.

The subprocess tests really start ``python -m neurochip.run``, kill it with
SIGKILL at a random moment (the seed is printed; set NEUROCHIP_KILL_SEED to
replay one) or interrupt it with SIGINT, resume it and require the final
integers to be *identical* to an uninterrupted run.  Every process a test
starts is reaped in a ``finally`` (tests/conftest.py fails the session on a
leftover).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given

from neurochip.checkpoint import load_checkpoint, save_checkpoint

from tests.helpers import saturating_network as _saturating_network, reap as _reap, wait_for as _wait
from tests.paths import ROOT
# 240 samples / batch 20 = 12 updates per epoch, 24 in all
COMMON = ["--epochs", "2", "--train-samples", "240", "--test-samples", "40", "--quiet"]
N_BATCHES = 12
SAME_KEYS = ("weights_sha256", "updates", "test_error", "test_loss", "train_error",
             "train_error_method", "saturations", "saturations_by_kind", "counts",
             "spikes_per_sample", "epochs", "train_samples", "test_samples", "hyper", "widths",
             "arch", "seed", "dataset", "test_confusion", "test_error_by_class")


# ------------------------------------------------------------------ helpers
def _cmd(args) -> list[str]:
    return [sys.executable, "-m", "neurochip.run", *map(str, args)]


def _cli(args, cwd, timeout=300, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(_cmd(args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=e)


def _popen(args, cwd, **kw):
    return subprocess.Popen(_cmd(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _position(path: Path):
    """``(updates, epoch, batch)`` of the checkpoint at ``path``, None while there is none.

    Any other problem (a half-written file) is an error: checkpoints are atomic.
    """
    if not path.exists():
        return None
    net, tr = load_checkpoint(str(path))
    assert net.updates == tr["epoch"] * N_BATCHES + tr["batch"], (net.updates, tr)  # consistent
    return net.updates, tr["epoch"], tr["batch"]


def _same_results(a: dict, b: dict) -> None:
    for k in SAME_KEYS:
        assert a[k] == b[k], f"{k}: {a[k]!r} != {b[k]!r}"
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])


def _uninterrupted(tmp_path_factory, name, args) -> dict:
    """The JSON of an uninterrupted run every interrupted one must reproduce exactly."""
    d = tmp_path_factory.mktemp(name)
    r = _cli(args + ["--json", d / "ref.json"], d)
    assert r.returncode == 0, r.stderr
    return json.loads((d / "ref.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _uninterrupted(tmp_path_factory, "reference", COMMON)


# long enough (240 updates) that a signal sent after the first checkpoint lands while training
LONG = ["--epochs", "20", "--train-samples", "240", "--test-samples", "40", "--quiet"]


@pytest.fixture(scope="module")
def reference_long(tmp_path_factory):
    return _uninterrupted(tmp_path_factory, "reference_long", LONG)

# ---------------------------------------------------------------- resume
RECIPE_FLAGS = ["--val-split", "0.25", "--lr-schedule", "step", "--lr-gamma", "0.5",
                "--weight-headroom", "0.25"]


@pytest.mark.parametrize("recipe", [[], RECIPE_FLAGS], ids=["plain", "recipe"])
def test_resume_from_every_kind_of_position_is_exact(tmp_path, monkeypatch, capsys, recipe):
    """In-process: snapshot every checkpoint of a run, resume from mid-epoch, end of the
    epoch's last batch (before its evaluation), an epoch boundary and the finished run;
    each ends with the reference's integers, history and counts.  With the training
    recipe (validation split, step schedule, weight headroom) the same holds, and the
    best-on-validation weights, the schedule's factors and the health counters too."""
    import neurochip.checkpoint as ck_mod
    from neurochip.run import main
    n_train = 160 if recipe else 120        # 6 batches per epoch either way (40 held out)
    args = ["--epochs", "2", "--train-samples", str(n_train), "--test-samples", "20",
            "--quiet"] + recipe
    snaps = []
    real_save = ck_mod.save_checkpoint

    def spy(path, net, training=None, best=None):
        real_save(path, net, training, best)
        snaps.append(((training["epoch"], training["batch"]), Path(path).read_bytes()))
    monkeypatch.setattr(ck_mod, "save_checkpoint", spy)
    assert main(args + ["--save", str(tmp_path / "ck.npz"), "--checkpoint-every", "1",
                        "--json", str(tmp_path / "ref.json")]) == 0
    monkeypatch.setattr(ck_mod, "save_checkpoint", real_save)
    ref = json.loads((tmp_path / "ref.json").read_text())
    positions = [p for p, _ in snaps]
    # 6 batches per epoch: per-batch saves (0,1)..(0,6), epoch end (1,0), ..., (2,0)
    for want in ((0, 3), (0, 6), (1, 0), (1, 5), (2, 0)):
        assert want in positions, positions
    for want in ((0, 3), (0, 6), (1, 0), (1, 5), (2, 0)):
        blob = next(b for p, b in snaps if p == want)
        ck = tmp_path / f"ck-{want[0]}-{want[1]}.npz"
        ck.write_bytes(blob)
        out = tmp_path / f"out-{want[0]}-{want[1]}.json"
        assert main(["--resume", str(ck), "--json", str(out), "--quiet"]) == 0
        got = json.loads(out.read_text())
        _same_results(ref, got)
        for key in ("learning_health", "best", "weights_sha256_latest", "val_samples",
                    "lr_schedule", "weight_headroom"):
            assert got[key] == ref[key], key
        assert got["resumed_from"] == str(ck)
        assert load_checkpoint(str(ck))[1]["epoch"] == 2          # checkpointed to completion
    if recipe:
        assert ref["val_samples"] == 40 and ref["evaluated"] == "best on validation"
        assert [h["lr_factor"] for h in ref["history"]] == [1.0, 0.5]
        best_epoch = ref["best"]["epoch"]
        vals = [h["val_error"] for h in ref["history"]]
        assert vals[best_epoch - 1] == min(vals) and best_epoch == vals.index(min(vals)) + 1
        # the hidden activity is watched from the same history: best epoch against the latest
        activity = ref["learning_health"]["activity"]
        assert (activity["best_epoch"], activity["latest_epoch"]) == (best_epoch, 2)
        assert activity["latest"] == ref["history"][1]["val_spikes_per_sample"]
        assert len(activity["ratios"]) == len(ref["history"][0]["val_spikes_per_sample"]) >= 2
        # --load evaluates the best-on-validation weights: the reported test error exactly
        out = tmp_path / "load.json"
        assert main(["--load", str(tmp_path / "ck.npz"), "--test-samples", "20", "--json", str(out),
                     "--quiet"]) == 0
        got = json.loads(out.read_text())
        assert (got["test_error"], got["weights_sha256"]) == (ref["test_error"], ref["weights_sha256"])
        if best_epoch == 2:
            assert ref["weights_sha256"] == ref["weights_sha256_latest"]
        else:
            assert ref["weights_sha256"] != ref["weights_sha256_latest"]
    capsys.readouterr()


def test_a_longer_plan_continues_a_finished_run_bit_for_bit(tmp_path, capsys):
    """A finished constant-rate run of 2 epochs resumed as ``step`` (step_epochs 2, so
    epochs 1-2 keep factor 1) to 3 epochs ends with the integers, history and best
    weights of the 3-epoch step run trained in one go; a plan that would change an
    epoch already trained (cosine, or 2 epochs of step_epochs 1) is refused, exit 2."""
    from neurochip.run import main
    common = ["--train-samples", "160", "--test-samples", "20", "--val-split", "40", "--quiet"]
    longer = ["--epochs", "3", "--lr-schedule", "step", "--lr-step-epochs", "2", "--lr-gamma", "0.25"]
    ck = tmp_path / "ck.npz"
    assert main(common + ["--epochs", "2", "--save", str(ck)]) == 0
    before = ck.read_bytes()
    for bad in (["--epochs", "3", "--lr-schedule", "cosine"],
                ["--epochs", "3", "--lr-schedule", "step", "--lr-step-epochs", "1"]):
        assert main(["--resume", str(ck), "--quiet"] + bad) == 2
        assert "epoch 2, already trained" in capsys.readouterr().err
        assert ck.read_bytes() == before                      # nothing written
    assert main(["--resume", str(ck), "--json", str(tmp_path / "cont.json")] + longer) == 0
    assert main(common + longer + ["--json", str(tmp_path / "ref.json")]) == 0
    ref, got = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ref", "cont"))
    _same_results(ref, got)
    for key in ("best", "weights_sha256_latest", "lr_schedule"):
        assert got[key] == ref[key], key
    assert [h["lr_factor"] for h in got["history"]] == [1.0, 1.0, 0.25]
    # the checkpoint now records the longer plan: a cosine continuation of it is refused too
    assert load_checkpoint(str(ck))[1]["lr_schedule"]["kind"] == "step"
    capsys.readouterr()


def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference_long, tmp_path):
    seed = int(os.environ.get("NEUROCHIP_KILL_SEED", time.time_ns() % (1 << 32)))
    rng = random.Random(seed)
    note = f"(NEUROCHIP_KILL_SEED={seed})"
    ck = tmp_path / "ck.npz"
    kills = []

    def kill_at_random(args, ready, what, max_delay):
        """Start a run, wait for ``ready()``, SIGKILL it after a random delay."""
        p = _popen(args, tmp_path)
        try:
            _wait(ready, p, 120, what + " " + note)
            time.sleep(rng.uniform(0.0, max_delay))
            kills.append(p.poll() is None)
            p.send_signal(signal.SIGKILL)
            p.wait(30)
        finally:
            _reap(p)

    # 1. a fresh run, killed at a random moment after its first checkpoint
    kill_at_random(LONG + ["--save", ck, "--checkpoint-every", "1"], lambda: _position(ck),
                   "the first checkpoint", 0.8)
    first = _position(ck)
    # 2. resumed, and killed again once it has made progress
    if first[0] < 20 * N_BATCHES:
        kill_at_random(["--resume", ck, "--checkpoint-every", "1", "--quiet"],
                       lambda: (_position(ck) or (0,))[0] > first[0], "progress after resume", 0.5)
    second = _position(ck)
    assert any(kills), f"no kill landed while training ran {note}"
    # 3. resumed to the end
    r = _cli(["--resume", ck, "--json", tmp_path / "out.json", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    print(f"killed at (updates, epoch, batch) {first} then {second} {note}")
    _same_results(reference_long, out)
    assert out["debug"]["enabled"] and out["debug"]["batches_checked"] > 0   # conftest's NEUROCHIP_DEBUG
    assert not list(tmp_path.glob(".tmp-*")), "temporary files of the killed writers remain"
    # 4. --resume of the finished run only evaluates, with the same figures
    r = _cli(["--resume", ck, "--json", tmp_path / "again.json", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    _same_results(reference_long, again)
    assert again["debug"]["updates_checked"] == 0


def test_sigint_saves_checkpoint_exits_130_and_resumes_exactly(reference_long, tmp_path):
    ck = tmp_path / "ck.npz"
    p = _popen(LONG + ["--save", ck, "--checkpoint-every", "1"], tmp_path, text=True)
    try:
        _wait(lambda: _position(ck), p, 120, "the first checkpoint")
        time.sleep(random.uniform(0.0, 0.4))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        _reap(p)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert p.returncode == 130, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(ck) in lines[0] and f"--resume {ck}" in lines[0], lines[0]
    assert "interrupted" in lines[0]
    updates, epoch, batch = _position(ck)
    assert updates < 20 * N_BATCHES, "the signal landed after training; nothing was interrupted"
    r = _cli(["--resume", ck, "--json", tmp_path / "out.json", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    _same_results(reference_long, json.loads((tmp_path / "out.json").read_text()))


class _Reader(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.data = stream, bytearray()

    def run(self):
        for chunk in iter(lambda: self.stream.read1(4096), b""):
            self.data += chunk

    def text(self) -> str:
        return self.data.decode(errors="replace")


@pytest.mark.parametrize("sig,times", [(signal.SIGINT, 1), (signal.SIGINT, 2), (signal.SIGTERM, 1)])
def test_sigint_without_save_writes_a_fresh_file(tmp_path, sig, times):
    """No --save: the checkpoint goes to ./neurochip-interrupted.npz, never over an
    existing file; a second Ctrl-C aborts at once; SIGTERM stops like Ctrl-C.
    Exit 128 + signal, no traceback."""
    old = tmp_path / "neurochip-interrupted.npz"
    old.write_bytes(b"someone else's file")
    # long enough (3,600 updates) that the signal lands while training runs
    p = _popen(["--epochs", "300", "--train-samples", "240", "--test-samples", "20"], tmp_path)
    reader = _Reader(p.stderr)
    reader.start()
    try:
        _wait(lambda: "epoch 1/300" in reader.text(), p, 120, "the start of training")
        time.sleep(0.4)
        for _ in range(times):
            p.send_signal(sig)
            time.sleep(0.005)
        p.wait(120)
    finally:
        _reap(p)
        reader.join(10)
    err = reader.text()
    assert p.returncode == 128 + int(sig), err
    assert "Traceback" not in err, err
    assert old.read_bytes() == b"someone else's file"
    last = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip()][-1]
    new = tmp_path / "neurochip-interrupted-1.npz"
    if times == 1:
        assert f"interrupted ({sig.name}): checkpoint saved to {new}" in last, err
        assert err.count("checkpoint saved to") == 1
    else:
        assert last.startswith(("aborted", "interrupted")), err
    if new.exists():
        load_checkpoint(str(new))          # whatever was written is complete

def test_cli_reports_saturations(tmp_path):
    """The CLI's JSON and summary report every saturation kind (checkpoint-crafted net)."""
    net = _saturating_network()
    ck = tmp_path / "sat.npz"
    save_checkpoint(str(ck), net, {"epoch": 0, "batch": 0, "epochs": 1, "dataset": "digits",
                                   "train_samples": 60, "test_samples": 20, "history": []})
    given = ck.read_bytes()
    r = _cli(["--resume", ck, "--save", tmp_path / "after.npz", "--json", tmp_path / "sat.json",
              "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "sat.json").read_text())
    by = data["saturations_by_kind"]
    assert by["input_alignment"] > 0 and by["weights"] > 0, by
    assert data["saturations"] == sum(by.values()) > 0
    assert data["counts"]["saturations"] == by
    assert f"saturations  {data['saturations']}" in r.stdout
    assert data["debug"]["enabled"] and data["debug"]["updates_checked"] == 3
    assert ck.read_bytes() == given                  # checkpoints went to --save
    assert load_checkpoint(str(tmp_path / "after.npz"))[0].updates == 3

# ---------------------------------------------------------------- timing
def test_seconds_counts_from_process_start(tmp_path):
    """``seconds`` includes interpreter start-up and imports: a 1 s sleep before the
    module is even imported shows up in it."""
    out = tmp_path / "t.json"
    code = ("import time; time.sleep(1.0); import runpy, sys; "
            f"sys.argv = ['neurochip.run', '--epochs', '0', '--train-samples', '20', "
            f"'--test-samples', '10', '--quiet', '--json', {str(out)!r}]; "
            "runpy.run_module('neurochip.run', run_name='__main__')")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    seconds = json.loads(out.read_text())["seconds"]
    assert 1.0 <= seconds <= wall + 0.05, (seconds, wall)


# -------------------------------------------------------- leaked processes
def test_leftover_process_detection():
    """tests/conftest.py's check sees children and grandchildren, not reaped zombies."""
    from tests import conftest
    p = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        kids = _wait(lambda: len(conftest.leftover_processes()) >= 2 and conftest.leftover_processes(),
                     None, 10, "child and grandchild")
        assert p.pid in kids and len(set(kids) - {p.pid}) >= 1
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    _wait(lambda: not set(kids) & set(conftest.leftover_processes()), None, 10, "no leftovers")


def test_ctrl_c_during_final_evaluation_keeps_the_training(tmp_path, monkeypatch, capsys):
    """Training done, Ctrl-C in the final evaluation without --save: the trained network is
    saved to a fresh file and resuming it gives the uninterrupted run's results."""
    import neurochip.trainer as trainer
    from neurochip.run import main
    args = ["--epochs", "1", "--train-samples", "60", "--test-samples", "20", "--quiet"]
    monkeypatch.chdir(tmp_path)
    assert main(args + ["--json", str(tmp_path / "ref.json")]) == 0
    real = trainer.evaluate

    def interrupted_final(*a, tally=None, **k):
        if tally is not None:                 # only the final test evaluation counts into the tally
            raise KeyboardInterrupt
        return real(*a, tally=tally, **k)
    monkeypatch.setattr(trainer, "evaluate", interrupted_final)
    assert main(args) == 130
    monkeypatch.setattr(trainer, "evaluate", real)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    saved = tmp_path / "neurochip-interrupted.npz"
    assert len(err) == 1 and str(saved) in err[0] and "--resume" in err[0], err
    assert load_checkpoint(str(saved))[1]["epoch"] == 1
    assert main(["--resume", str(saved), "--json", str(tmp_path / "out.json"), "--quiet"]) == 0
    _same_results(json.loads((tmp_path / "ref.json").read_text()),
                  json.loads((tmp_path / "out.json").read_text()))

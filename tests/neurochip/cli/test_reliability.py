"""Reliability: atomic checkpoints, kill/interrupt and resume, overflow accounting,
debug-mode register checks, determinism, integer edge properties, timing.

The subprocess tests really start ``python -m neurochip.run``, kill it with
SIGKILL at a random moment (the seed is printed; set NEUROCHIP_KILL_SEED to
replay one) or interrupt it with SIGINT, resume it and require the final
integers to be *identical* to an uninterrupted run.  Every process a test
starts is reaped in a ``finally`` (tests/conftest.py fails the session on a
leftover).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurochip import learning
from neurochip import numerics as nx
from neurochip.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from neurochip.core import K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI, REC_DEC, REC_S, CoreNet
from neurochip.data import load_digits
from neurochip.debug import DebugBackend, RegisterWidthError, check_batch, check_parameters, enabled
from neurochip.network import Architecture, Hyper, Network, Widths, get_preset
from neurochip.trainer import Tally, epoch_order, make_backend, train_step

from tests.paths import ROOT  # noqa: E402
# 240 samples / batch 20 = 12 updates per epoch, 24 in all
COMMON = ["--epochs", "2", "--train-samples", "240", "--test-samples", "40", "--quiet"]
N_BATCHES = 12
SAME_KEYS = ("weights_sha256", "updates", "test_error", "test_loss", "train_error",
             "train_error_method", "saturations", "saturations_by_kind", "counts",
             "spikes_per_sample", "epochs", "train_samples", "test_samples", "hyper", "widths",
             "arch", "seed", "dataset")


# ------------------------------------------------------------------ helpers
def _cmd(args) -> list[str]:
    return [sys.executable, "-m", "neurochip.run", *map(str, args)]


def _cli(args, cwd, timeout=300, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(_cmd(args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=e)


def _popen(args, cwd, **kw):
    return subprocess.Popen(_cmd(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _reap(p: subprocess.Popen) -> None:
    """Never leave a process behind, whatever happened in the test."""
    if p.poll() is None:
        p.kill()
    try:
        p.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def _wait(pred, proc, timeout: float, what: str):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            v = pred()
            if v:
                return v
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError(f"timeout waiting for {what}")


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


def _digits(n, sbits=12, start=0):
    ds = load_digits()
    return ds.quantised(ds.train_x[start:start + n], sbits), ds.train_y[start:start + n]


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


# --------------------------------------------------------- atomic checkpoints
def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    import neurochip.checkpoint as ck_mod
    path = tmp_path / "x.npz"
    path.write_bytes(b"old")

    def fail_fsync(fd):
        raise OSError(5, "I/O error")
    monkeypatch.setattr(ck_mod.os, "fsync", fail_fsync)
    with pytest.raises(OSError):
        atomic_write_bytes(str(path), b"new" * 1000)
    monkeypatch.undo()

    def interrupt(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(ck_mod.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(str(path), b"newer")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
    atomic_write_bytes(str(path), b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["x.npz"]


def test_atomic_write_file_modes(tmp_path):
    mask = os.umask(0o022)
    try:
        p = tmp_path / "fresh.json"
        atomic_write_bytes(str(p), b"{}")
        assert p.stat().st_mode & 0o777 == 0o644       # not mkstemp's 0600
        os.chmod(p, 0o640)
        atomic_write_bytes(str(p), b"{ }")
        assert p.stat().st_mode & 0o777 == 0o640       # an existing file keeps its mode
    finally:
        os.umask(mask)


WRITER = """
import sys, numpy as np
from neurochip.checkpoint import save_checkpoint
from neurochip.network import Network, get_preset
p = get_preset("digits-2c")
nets = [Network.create(p.arch, p.hyper, p.widths, seed=s) for s in (1, 2)]
print("ready", flush=True)
i = 0
while True:
    save_checkpoint(sys.argv[1], nets[i % 2], {"epoch": i})
    i += 1
"""


def test_checkpoint_never_half_written_under_sigkill(tmp_path):
    """SIGKILL a process that rewrites a checkpoint in a loop: the file always loads."""
    rng = random.Random()
    p = get_preset("digits-2c")
    shas = {Network.create(p.arch, p.hyper, p.widths, seed=s).weights_sha256() for s in (1, 2)}
    path = tmp_path / "loop.npz"
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            _wait(lambda: path.exists(), proc, 60, "the first checkpoint")
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            _reap(proc)
        net, training = load_checkpoint(str(path))
        assert net.weights_sha256() in shas and isinstance(training["epoch"], int)


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


# ------------------------------------------------------------ overflow
def _saturating_network(seed=5) -> Network:
    """4-bit weights, S = 16, a huge learning rate.  Layer 1: rows alternately all +7 /
    all -8 with exponent 0 (one weight = 1.0), so a few input spikes overflow the 24-bit
    aligned input (64 x 7 x 2**16 > 2**23); the readout (exponent 8, small random
    weights) stays responsive, so learning drives its weights and biases into their
    ranges' edges."""
    arch = Architecture.parse("1x8x8:f32-f10")
    hyper = Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5, t1=20, t2=8,
                  lrs=(10.0, 10.0), batch_size=20)
    widths = Widths(weight_bits=4, state_bits=16, trace_bits=2, bias_bits=18)
    s1, s2 = arch.weight_shapes()
    w1 = np.where(np.arange(s1[0])[:, None] % 2 == 0, 7, -8).repeat(s1[1], 1).astype(np.int32)
    w2 = np.random.default_rng(seed).integers(-4, 4, s2).astype(np.int32)
    bs = [np.zeros(s, np.int32) for s in arch.bias_shapes()]
    return Network(arch, hyper, widths, seed, [w1, w2], bs, [0, 8], 0, "")


def test_saturations_are_counted_never_wrapped():
    net = _saturating_network()
    x, y = _digits(40, sbits=16)
    res = CoreNet(net).run(x[:20], y[:20], train=True)
    assert res.counts[..., K_SAT_INPUT].sum() > 0
    # decoder and encoder residue cannot saturate (see the property tests below)
    assert res.counts[..., K_SAT_DEC].sum() == 0 and res.counts[..., K_SAT_PSI].sum() == 0
    be = DebugBackend(make_backend(net), net)     # registers checked after every batch/update
    tally = Tally.zeros(net.arch.n_layers)
    for i in range(2):
        train_step(be, net, x[20 * i:20 * (i + 1)], y[20 * i:20 * (i + 1)], tally)
    sat = tally.saturations()
    assert sat["input_alignment"] > 0 and sat["weights"] > 0, sat
    assert tally.total_saturations() == sum(sat.values())
    check_parameters(net)
    assert be.batches_checked == 2 and be.updates_checked == 2


def test_update_saturation_count_is_exact():
    """Hand-made contrastive sums push every edge weight outward by a known amount."""
    net = _saturating_network()
    lo, hi = nx.signed_range.py_func(4)
    net.weights_q[1][...] = np.where(np.arange(net.weights_q[1].size) % 3 == 0, lo, hi).reshape(
        net.weights_q[1].shape)
    before = [w.copy() for w in net.weights_q]
    grads = []
    for w, b in zip(net.weights_q, net.biases_q):
        g = np.where(w == hi, 1 << 40, np.where(w == lo, -(1 << 40), 0)).astype(np.int64)
        g.reshape(-1)[:3] = 0                          # three weights stay put
        grads.append((g, np.zeros(b.shape, np.int64)))
    stats = learning.update_network(net, grads)
    for l, (w0, w1) in enumerate(zip(before, net.weights_q)):
        assert stats.weight_saturations[l] == w0.size - 3
        assert stats.weight_writes[l] == 0               # saturated at the edge: unchanged
        assert np.array_equal(w0, w1) and w1.min() >= lo and w1.max() <= hi
    # the other direction: every weight moves, none saturates
    # (delta = G * M / 2**K: a G of 2 * 2**K / M moves a weight inward by about 2)
    unit = [max(1, round(2 * 2 ** lc.lr_w[1] / lc.lr_w[0])) for lc in net.constants().layers]
    grads = [(-np.sign(g).astype(np.int64) * u, gb) for (g, gb), u in zip(grads, unit)]
    stats = learning.update_network(net, grads)
    assert stats.weight_saturations.sum() == 0 and stats.weight_writes.sum() > 0


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


def test_headroom_refuses_configurations_that_could_overflow():
    from neurochip.errors import UserError
    from neurochip.run import check_headroom
    for name in ("digits", "digits-fc", "digits-2c", "mnist-small", "paper-mnist", "paper-fmnist"):
        p = get_preset(name)
        for bits in (2, 8, 16):
            check_headroom(Network.create(p.arch, p.hyper, dataclasses.replace(p.widths, weight_bits=bits)))
    p = get_preset("paper-mnist")
    check_headroom(Network.create(p.arch, p.hyper, dataclasses.replace(p.widths, trace_bits=16)))
    big = Network.create(p.arch, dataclasses.replace(p.hyper, batch_size=1000),
                         dataclasses.replace(p.widths, trace_bits=16))
    with pytest.raises(UserError, match="overflow"):
        check_headroom(big)
    check_headroom(big, training=False)          # evaluation alone is fine


# ------------------------------------------------------------ debug mode
def test_debug_checks_find_out_of_range_registers():
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=1)
    x, y = _digits(3)
    res = CoreNet(net).run(x, y, train=True, record=True)
    check_batch(net, res, True)
    one = 1 << net.widths.state_bits
    for kind, value, needle in ((REC_DEC, nx.REG_MAX + 1, "decoder"), (REC_S, one + 1, "state s"),
                                (REC_S, -1, "state s")):
        bad = dataclasses.replace(res, rec_state=res.rec_state.copy())
        bad.rec_state[1, 2, kind, 70] = value
        with pytest.raises(RegisterWidthError, match=needle) as exc:
            check_batch(net, bad, True)
        assert "sample 1" in str(exc.value) and "layer 1" in str(exc.value)
    bad = dataclasses.replace(res, traces=res.traces.copy())
    bad.traces[0, 0, 5] = 256
    with pytest.raises(RegisterWidthError, match="trace"):
        check_batch(net, bad, True)
    net.weights_q[1][0, 0] = 128
    with pytest.raises(RegisterWidthError, match="layer 2 weight"):
        check_parameters(net)


@pytest.mark.parametrize("preset", ["digits", "digits-2c"])
def test_debug_backend_changes_nothing(preset):
    """Recording, chunking (one sample at a time) and checking give the same integers."""
    p = get_preset(preset)
    hyper = dataclasses.replace(p.hyper, batch_size=10, t1=20, t2=6, pool="max" if preset == "digits" else "avg")
    a = Network.create(p.arch, hyper, p.widths, seed=4)
    b = a.copy()
    ba, bb = make_backend(a), DebugBackend(make_backend(b), b, record_bytes=1)
    x, y = _digits(30)
    for i in range(3):
        ra, rb = ba.run(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10]), bb.run(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
        for f in ("traces", "pool_idx", "s_free", "predictions", "counts"):
            assert np.array_equal(getattr(ra, f), getattr(rb, f)), f
        train_step(ba, a, x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
        train_step(bb, b, x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
    assert a.weights_sha256() == b.weights_sha256()
    assert bb.batches_checked == 6 and bb.updates_checked == 3


def test_debug_switch(monkeypatch):
    for value, want in (("1", True), ("yes", True), ("0", False), ("", False), ("off", False)):
        monkeypatch.setenv("NEUROCHIP_DEBUG", value)
        assert enabled() is want
    monkeypatch.delenv("NEUROCHIP_DEBUG")
    assert enabled() is False and enabled(True) is True


# ---------------------------------------------------------- determinism
def _trajectory(preset: str, pool: str, steps=2):
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, pool=pool, batch_size=10, t1=24, t2=8),
                         p.widths, seed=11)
    be = make_backend(net)
    x, y = _digits(10 * steps)
    out = []
    for i in range(steps):
        res = be.run(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10], train=True)
        out += [res.traces, res.pool_idx, res.s_free, res.counts]
        stats = train_step(be, net, x[10 * i:10 * i + 10], y[10 * i:10 * i + 10]).stats
        out += [stats.weight_writes, stats.weight_saturations, stats.bias_saturations]
    return net.weights_sha256(), out


@pytest.mark.parametrize("preset,pool", [("digits-2c", "avg"), ("digits-2c", "max")])
def test_identical_integers_across_repeats_and_thread_counts(preset, pool):
    import numba
    before = numba.get_num_threads()
    counts = [1, min(2, numba.config.NUMBA_NUM_THREADS), min(2, numba.config.NUMBA_NUM_THREADS)]
    runs = []
    try:
        for n in counts:
            numba.set_num_threads(n)
            runs.append(_trajectory(preset, pool))
    finally:
        numba.set_num_threads(before)
    sha0, arrays0 = runs[0]
    for sha, arrays in runs[1:]:
        assert sha == sha0
        assert all(np.array_equal(a, b) for a, b in zip(arrays0, arrays))


def test_epoch_order_is_a_pure_function():
    a = epoch_order(7, 3, 500)
    assert np.array_equal(a, epoch_order(7, 3, 500))
    assert not np.array_equal(a, epoch_order(7, 4, 500)) and not np.array_equal(a, epoch_order(8, 3, 500))
    assert np.array_equal(np.sort(a), np.arange(500))


def test_numba_and_torch_backends_identical():
    pytest.importorskip("torch")
    p = get_preset("digits-2c")
    hyper = dataclasses.replace(p.hyper, batch_size=8, t1=20, t2=6)
    a = Network.create(p.arch, hyper, p.widths, seed=2)
    b = a.copy()
    ba, bb = make_backend(a), make_backend(b, "torch", device="cpu")
    x, y = _digits(16)
    for i in range(2):
        xs, ys = x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
        ra, rb = ba.run(xs, ys), bb.run(xs, ys)
        for f in ("traces", "pool_idx", "s_free", "predictions", "counts"):
            assert np.array_equal(getattr(ra, f), getattr(rb, f)), f
        train_step(ba, a, xs, ys)
        train_step(bb, b, xs, ys)
        assert a.weights_sha256() == b.weights_sha256()


# ------------------------------------------- integer operations at the edges
I62 = 1 << 62
both = pytest.mark.parametrize("impl", ["numba", "python"])


def _f(op, impl):
    return op if impl == "numba" else op.py_func


def _exact_round_shift(x, k):
    return x << -k if k <= 0 else math.floor(Fraction(x, 1 << k) + Fraction(1, 2))


widths_st = st.integers(2, 24).map(lambda b: nx.signed_range.py_func(b))
edge_ints = st.one_of(st.integers(-I62, I62 - 1),
                      st.sampled_from([-I62, -I62 + 1, -(1 << 23) - 1, -(1 << 23), -1, 0, 1,
                                       (1 << 23) - 1, 1 << 23, I62 - 2, I62 - 1]))


@both
@given(x=edge_ints, rng=widths_st)
@settings(max_examples=150, deadline=None)
def test_saturate_properties(impl, x, rng):
    lo, hi = rng
    sat = _f(nx.saturate, impl)
    y = sat(x, lo, hi)
    assert lo <= y <= hi
    assert sat(y, lo, hi) == y                          # idempotent
    assert y == x if lo <= x <= hi else y in (lo, hi)
    assert sat(x + 1, lo, hi) >= y                      # monotone


@both
@given(num=st.integers(-I62, I62 - 1), k=st.integers(0, 62), rnd=st.integers(0, I62 - 1))
@settings(max_examples=200, deadline=None)
def test_stochastic_shift_bounds(impl, num, k, rnd):
    sh = _f(nx.stochastic_shift, impl)
    lo = num >> k                                       # floor(num / 2**k)
    got = sh(num, k, rnd)
    assert got in (lo, lo + 1)
    assert sh(num, k, 0) == lo                          # no randomness: floor
    ceil = -((-num) >> k)
    if k > 0:
        assert sh(num, k, I62 - 1) == ceil              # all ones: ceiling
        assert sh(num, k, rnd) <= sh(num, k, min(rnd + (1 << (62 - k)), I62 - 1))   # monotone in rnd
    if num % (1 << k) == 0:
        assert got == lo                                # exact values are never rounded


@both
@given(x=st.integers(-I62, I62 - 1), k=st.integers(-10, 61))
@settings(max_examples=200, deadline=None)
def test_round_shift_at_int64_extremes(impl, x, k):
    if k < 0:
        x >>= 12                                        # keep the exact left shift inside int64
    if k > 0 and x > I62 - (1 << (k - 1)) - 1:
        x = I62 - (1 << (k - 1)) - 1                    # x + 2**(k-1) stays inside int64
    assert _f(nx.round_shift, impl)(x, k) == _exact_round_shift(x, k)


@given(sbits=st.integers(8, 16), lam_q=st.integers(1, 4096), theta=st.floats(0.01, 1.0),
       psi=st.sampled_from([nx.REG_MIN, nx.REG_MIN + 1, -1, 0, 1, nx.REG_MAX - 1, nx.REG_MAX]),
       a=st.sampled_from([0, 1, -2]), a_prev=st.sampled_from([0, 1, -2]))
@settings(max_examples=200, deadline=None)
def test_encoder_step_at_register_extremes(sbits, lam_q, theta, psi, a, a_prev):
    one = 1 << sbits
    a, a_prev = (one if v == 1 else one // 3 if v == -2 else 0 for v in (a, a_prev))
    thr = nx.round_shift.py_func(lam_q * math.floor(theta * one + 0.5), 12)
    one_lam = nx.round_shift.py_func(lam_q * one, 12)
    p1, q1 = nx.encoder_step(psi, a, a_prev, lam_q, thr, one_lam)
    p2, q2 = nx.encoder_step.py_func(psi, a, a_prev, lam_q, thr, one_lam)
    pred = _exact_round_shift((4096 - lam_q) * a_prev, 12)
    v = psi + a - pred
    assert (int(p1), int(q1)) == (int(p2), int(q2)) == (v - (v > thr) * one_lam, int(v > thr))
    s = nx.saturate(int(p1), nx.REG_MIN, nx.REG_MAX)
    assert nx.REG_MIN <= s <= nx.REG_MAX


@given(sbits=st.integers(8, 16), lam_q=st.integers(1, 4096), theta=st.floats(0.01, 1.0),
       acts=st.lists(st.integers(0, 1 << 16), min_size=1, max_size=300))
@settings(max_examples=150, deadline=None)
def test_encoder_residue_stays_far_inside_its_register(sbits, lam_q, theta, acts):
    """Any activation sequence in [0, ONE]: |psi| <= 4 ONE <= 2**18, so the 24-bit psi
    register cannot saturate for S <= 16 (why the encoder counter stays 0)."""
    one = 1 << sbits
    thr = nx.round_shift.py_func(lam_q * math.floor(theta * one + 0.5), 12)
    one_lam = nx.round_shift.py_func(lam_q * one, 12)
    psi, prev = 0, 0
    for a in acts:
        a = min(a, one)
        psi, q = nx.encoder_step.py_func(psi, a, prev, lam_q, thr, one_lam)
        prev = a
        assert abs(psi) <= 4 * one
    assert 4 * (1 << 16) < nx.REG_MAX


@both
@given(dec=st.integers(nx.REG_MIN, nx.REG_MAX), inp=st.integers(nx.REG_MIN, nx.REG_MAX),
       lam_q=st.integers(0, 4096))
@settings(max_examples=200, deadline=None)
def test_decoder_step_is_a_convex_combination(impl, dec, inp, lam_q):
    """``dec'`` lies between ``dec`` and the (saturated) input: the decoder register
    cannot saturate (why the decoder counter stays 0)."""
    d = _f(nx.decoder_step, impl)(dec, inp, lam_q)
    assert min(dec, inp) <= d <= max(dec, inp)
    assert d == dec + _exact_round_shift(lam_q * (inp - dec), 12)
    if lam_q == 4096:
        assert d == inp
    if lam_q == 0:
        assert d == dec


@both
@given(sbits=st.integers(8, 16), s=st.integers(0, 1 << 16), eps_q=st.integers(0, 4096),
       drive=st.one_of(st.integers(-(1 << 40), 1 << 40), st.sampled_from([-(1 << 40), 1 << 40, 0])))
@settings(max_examples=200, deadline=None)
def test_state_step_clamps(impl, sbits, s, eps_q, drive):
    one = 1 << sbits
    s = min(s, one)
    got = _f(nx.state_step, impl)(s, drive, eps_q, one)
    assert 0 <= got <= one
    assert got == min(max(s + _exact_round_shift(eps_q * (drive - s), 12), 0), one)


@both
@given(uf=st.integers(-(1 << 30), 1 << 30), ub=st.integers(-(1 << 30), 1 << 30),
       sh_fwd=st.integers(0, 20), fb=st.sampled_from([0, 1, 2048, 4096]), sh_fb=st.integers(0, 16),
       sh_out=st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_align_input_extremes(impl, uf, ub, sh_fwd, fb, sh_fb, sh_out):
    got = _f(nx.align_input, impl)(uf, ub, sh_fwd, fb, sh_fb, sh_out)
    assert got == _exact_round_shift((uf << sh_fwd) + ((ub * fb) << sh_fb), sh_out)


@given(sbits=st.integers(8, 16), s=st.integers(0, 1 << 16), beta_q=st.integers(-4096, 4096),
       label=st.booleans())
@settings(max_examples=150, deadline=None)
def test_nudge_term_bounded(sbits, s, beta_q, label):
    one = 1 << sbits
    s = min(s, one)
    got = nx.nudge_term(s, one if label else 0, beta_q)
    assert got == nx.nudge_term.py_func(s, one if label else 0, beta_q)
    assert abs(got) <= -(-abs(beta_q) * one // 4096)


@given(sbits=st.integers(8, 16), tbits=st.integers(2, 16), s=st.integers(0, 1 << 16))
@settings(max_examples=150, deadline=None)
def test_trace_latch_edges(sbits, tbits, s):
    one, tmax = 1 << sbits, (1 << tbits) - 1
    s = min(s, one)
    t = nx.trace_latch(s, tmax, sbits)
    assert 0 <= t <= tmax and t == nx.trace_latch.py_func(s, tmax, sbits)
    assert nx.trace_latch(0, tmax, sbits) == 0 and nx.trace_latch(one, tmax, sbits) == tmax
    assert nx.trace_latch(max(s - 1, 0), tmax, sbits) <= t          # monotone


@given(seed=st.sampled_from([0, 1, (1 << 32) - 1]), update=st.integers(0, (1 << 40)),
       stream=st.integers(0, 64), index=st.integers(0, (1 << 32) - 1))
@settings(max_examples=100, deadline=None)
def test_random_bits_range_and_masking(seed, update, stream, index):
    r = nx.random_bits(seed, update, stream, index)
    assert 0 <= r < I62
    assert r == nx.random_bits.py_func(seed, update, stream, index)
    assert r == nx.random_bits(seed, update & 0xFFFFFFFF, stream, index)   # counters are 32-bit


def test_q12_and_lr_constant_edges():
    assert nx.q12(0.0) == 0 and nx.q12(1.0) == 4096
    assert nx.q12(1 / 8192) == 1 and nx.q12(1 / 8192 - 1e-12) == 0
    m, k = nx.lr_constants(1e-30)
    assert k == 62 and m == 0                                  # too small: rounds to no update
    m, k = nx.lr_constants(2.0 ** 20)
    assert k == 0 and m == 1 << 20
    with pytest.raises(ValueError):
        nx.lr_constants(2.0 ** 31)


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

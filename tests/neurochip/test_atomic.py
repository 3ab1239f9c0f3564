"""neurochip.atomic: outputs appear complete or not at all (checkpoints included)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from neurochip.checkpoint import atomic_write_bytes, load_checkpoint
from neurochip.network import Network, get_preset
from tests.helpers import reap as _reap, wait_for as _wait
from tests.paths import ROOT


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    import neurochip.atomic as ck_mod
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

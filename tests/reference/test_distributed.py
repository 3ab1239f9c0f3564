"""Data-parallel training (reference.distributed): 2 gloo processes == 1 process == the core.

Launches a real ``torchrun --standalone --nproc_per_node 2`` (gloo on CPU) and
compares the final ``weights_sha256`` with a one-process run of the same
module and with the Numba core trained in-process on the same minibatches.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

ARGS = ["--preset", "digits-2c", "--bits", "8", "--pool", "avg", "--samples", "7",
        "--updates", "3", "--t1", "15", "--t2", "5", "--seed", "4"]


def _env():
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _run(cmd, tmp_path):
    proc = subprocess.run(cmd, cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _core_sha(pool: str) -> str:
    from neurochip.trainer import NumbaBackend, train_step
    from reference.common import build_network, load_train, minibatches
    ns = argparse.Namespace(preset="digits-2c", arch=None, bits=8, pool=pool, samples=7,
                            updates=3, seed=4, t1=15, t2=5, data_dir=None, device="cpu")
    net = build_network(ns)
    x, y = load_train(ns, net)
    be = NumbaBackend(net)
    for idx in minibatches(net.seed, len(y), 7, 3):
        train_step(be, net, x[idx], y[idx])
    return net.weights_sha256()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch.distributed with gloo not available")
def test_two_gloo_processes_equal_one_process(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    out1 = _run([sys.executable, "-m", "reference.distributed", *ARGS, "--out", str(one)], tmp_path)
    out2 = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc_per_node", "2", "-m", "reference.distributed", *ARGS,
                 "--out", str(two)], tmp_path)
    r1, r2 = json.loads(one.read_text()), json.loads(two.read_text())
    assert r1["world_size"] == 1 and r2["world_size"] == 2
    assert [h["local_samples"] for h in r2["history"]] == [4, 4, 4]   # 7 split as 4 + 3
    assert r1["updates"] == r2["updates"] == 3
    # the all-reduced counters equal the single process's
    assert [h["spikes"] for h in r1["history"]] == [h["spikes"] for h in r2["history"]]
    assert r1["weights_sha256"] == r2["weights_sha256"]
    assert out1.strip().splitlines()[-1] == f"weights_sha256 {r1['weights_sha256']}"
    assert out2.strip().splitlines()[-1] == f"weights_sha256 {r2['weights_sha256']}"
    # and both equal the Numba core trained on the same minibatches
    assert r1["weights_sha256"] == _core_sha("avg")


def test_distributed_bad_argument():
    proc = subprocess.run([sys.executable, "-m", "reference.distributed", "--pool", "min"],
                          cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1

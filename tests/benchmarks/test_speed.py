"""The speed benchmark's headline, before/after and ceiling sections run and write their keys.

No test asserts a time (the machines are shared): only that the sections run, that the
figures the checks rely on are in ``--json`` and are positive, and that the event counts
they divide are exact integers.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT, SHARED

MNIST = SHARED / "mnist"


@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").exists()
                    and not (MNIST / "train-images-idx3-ubyte").exists(),
                    reason="MNIST files not in ../shared/data/mnist")
def test_headline_and_ceiling_keys(tmp_path):
    out = tmp_path / "speed.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), "--quick",
                        "--sections", "08", "--threads", "2", "--data-dir", str(MNIST),
                        "--json", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["core_vs_float32_train_ratio"] > 0
    row = data["headline"]["rows"][0]
    assert row["preset"] == "mnist-small" and row["batch"] == 20
    assert data["paper_events_per_s"] > 0 and data["scatter_ceiling_events_per_s"] > 0
    c = data["ceiling"]
    assert c["events_per_sample"] > c["edge_events_per_sample"] > 0
    assert "Laborieux" in data["peer_quotes"]["source"]
    # PyTorch measured under each OpenMP wait policy in its own process; the faster one leads
    by = data["headline"]["by_wait_policy"]
    assert set(by) == {"default", "PASSIVE"}
    assert {r["wait_policy"] for r in by["default"]} == {"default"}
    assert {r["wait_policy"] for r in by["PASSIVE"]} == {"PASSIVE"}
    assert row["float32_ms_per_train_sample"] == min(
        rows[0]["float32_ms_per_train_sample"] for rows in by.values())
    assert row == by[row["wait_policy"]][0]


def test_baseline_revision_is_unpacked_whole(tmp_path):
    """``--baseline REV`` builds the revision's own package, whatever today's layout is."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.speed.baseline import BASE_PACKAGE, build_revision
    finally:
        sys.path.remove(str(ROOT))
    folder = build_revision("c0fb9bb")
    pkg = os.path.join(folder, BASE_PACKAGE)
    # c0fb9bb had core.py as one module; its own files, not today's, are there
    assert os.path.isfile(os.path.join(pkg, "core.py"))
    assert os.path.isfile(os.path.join(pkg, "run.py"))
    assert not os.path.exists(os.path.join(pkg, "backend.py"))


def test_bad_flag_is_one_line_exit_2():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), "--rounds", "x"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_headline_keys_for_both_networks(monkeypatch, capsys):
    """Each headline row sets its own summary key (a regression: only the last one did)."""
    import types
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.speed import headline
    finally:
        sys.path.remove(str(ROOT))

    def row(preset, f32, core):
        return dict(preset=preset, arch="1x28x28:f10", t1=1, t2=1, batch=2, float32_ms_per_train_sample=f32,
                    core_ms_per_train_sample=core, ratio=f32 / core, ratio_per_round=[f32 / core],
                    wait_policy="default")
    rows = [row("mnist-small", 3.0, 1.0), row("paper-mnist", 10.0, 2.0)]
    monkeypatch.setattr(headline, "bench_headline",
                        lambda args: {"torch_threads": 2, "rows": rows, "by_wait_policy": {"default": rows}})
    result = {}
    headline.report_headline(types.SimpleNamespace(threads=2), result)
    assert result["core_vs_float32_train_ratio"] == 3.0
    assert result["core_vs_float32_train_ratio_paper"] == 5.0
    assert "under default" in capsys.readouterr().out

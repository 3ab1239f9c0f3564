"""``neurochip.budget --samples N``: figures averaged over N images, and the report says so."""
import json
import subprocess
import sys

import numpy as np

from neurochip.budget.report import build_report, simulate_samples
from neurochip.data import load_digits
from neurochip.network import Network, get_preset


def _net():
    p = get_preset("digits")
    return Network.create(p.arch, p.hyper, p.widths, seed=1, preset="digits")


def test_n_samples_average_the_single_sample_figures():
    net = _net()
    ds = load_digits()
    x = ds.quantised(ds.test_x[:3], net.widths.state_bits)
    y = np.asarray(ds.test_y[:3], np.int64)
    counts, rasters, tally, preds = simulate_samples(net, x, y, train=True)
    assert counts.shape[0] == rasters.shape[0] == 3 and tally.samples_train == 3
    rep = build_report(net, tally, counts, rasters, predictions=preds, labels=y)
    singles = [build_report(net, None, counts[i], rasters[i]) for i in range(3)]
    assert rep["source"]["samples"] == 3 and "averages over 3" in rep["source"]["counts"]
    nb = rep["neurobench"]
    eff = [s["neurobench"]["SynapticOperations"]["Effective_ACs"] for s in singles]
    assert nb["SynapticOperations"]["Effective_ACs"] * 3 == sum(eff)
    mu = [s["neurobench"]["MembraneUpdates"] for s in singles]
    assert abs(nb["MembraneUpdates"] * 3 - sum(mu)) < 1e-6
    ev = [s["per_sample"]["synaptic_events"]["total"] for s in singles]
    assert abs(rep["per_sample"]["synaptic_events"]["total"] * 3 - sum(ev)) < 1e-6
    res = rep["neurobench_results"]
    assert res["ClassificationAccuracy"] == float((preds == y).mean())
    assert set(res) == {"Footprint", "ConnectionSparsity", "ClassificationAccuracy",
                        "ActivationSparsity", "MembraneUpdates", "SynapticOperations"}


def test_cli_samples_json_and_errors(tmp_path):
    out = tmp_path / "b.json"
    run = subprocess.run([sys.executable, "-m", "neurochip.budget", "--samples", "4",
                          "--inference", "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rep = json.loads(out.read_text())
    assert rep["source"]["samples"] == 4 and rep["source"]["sample"] == "digits test[0:4]"
    assert "averaged over 4 simulated images" in run.stdout
    for bad, msg in ((["--samples", "0"], "--samples must be a positive integer"),
                     (["--sample", "358", "--samples", "2"], "runs past the 359 test images")):
        r = subprocess.run([sys.executable, "-m", "neurochip.budget", *bad],
                           capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
        assert msg in lines[0]

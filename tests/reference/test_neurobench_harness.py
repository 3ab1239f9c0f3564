"""NeuroBench's own Benchmark on to_torch(net) gives neurochip.budget's numbers.

Every metric of NeuroBench 2.3 that applies is compared with the budget's
results dict for the same test images: the integer ones exactly; the two
ratios NeuroBench averages per batch in floating point (ActivationSparsity,
ClassificationAccuracy: ``result * batch / n`` summed) through the integer
counts they stand for.  Footprint differs by snnTorch's buffers, 16 bytes per
neuron layer (the documented convention).
"""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch", reason="snnTorch is not installed")
pytest.importorskip("neurobench", reason="NeuroBench is not installed")

from neurochip.data import load_digits  # noqa: E402
from neurochip.network import Network, get_preset  # noqa: E402
from reference.neurobench_harness import SNNTORCH_BUFFER_BYTES, ours, run_neurobench  # noqa: E402


@pytest.mark.parametrize("preset", ["digits", "digits-2c"])
def test_neurobench_benchmark_agrees_with_the_budget(preset):
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=24), p.widths, seed=5,
                         preset=preset)
    ds = load_digits()
    n = 12
    x = ds.quantised(ds.test_x[:n], net.widths.state_bits)
    y = np.asarray(ds.test_y[:n], np.int64)
    theirs = run_neurobench(net, x, y, batch_size=5)      # 3 batches: 5 + 5 + 2
    mine = ours(net, x, y)
    assert set(theirs) == set(mine)
    assert theirs["Footprint"] == mine["Footprint"] + SNNTORCH_BUFFER_BYTES * net.arch.n_layers
    assert theirs["ConnectionSparsity"] == mine["ConnectionSparsity"]
    assert theirs["SynapticOperations"] == mine["SynapticOperations"]
    assert mine["SynapticOperations"]["Effective_ACs"] > 0
    assert theirs["MembraneUpdates"] == mine["MembraneUpdates"]
    activations = sum(net.arch.layer_sizes()[1:]) * net.hyper.t1 * n
    spikes = [round((1 - r["ActivationSparsity"]) * activations) for r in (theirs, mine)]
    assert spikes[0] == spikes[1] > 0
    assert abs(theirs["ActivationSparsity"] - mine["ActivationSparsity"]) < 1e-12
    assert round(theirs["ClassificationAccuracy"] * n) == round(mine["ClassificationAccuracy"] * n)

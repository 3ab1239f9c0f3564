"""to_torch(): the stepwise torch module reproduces the core's free-phase spikes exactly."""
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch", reason="snnTorch is not installed")

from neurochip.core import CoreNet  # noqa: E402
from neurochip.data import load_digits  # noqa: E402
from neurochip.network import Network, get_preset  # noqa: E402
from reference.torch_port import input_spike_train, run_free_phase, to_torch  # noqa: E402


def _net(preset, bits=8, seed=2, t1=30):
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=t1),
                         dataclasses.replace(p.widths, weight_bits=bits), seed=seed)
    return net


@pytest.mark.parametrize("preset,bits", [("digits", 8), ("digits-2c", 8), ("digits-fc", 8),
                                         ("digits-2c", 16)])
def test_port_spikes_equal_the_core(preset, bits):
    net = _net(preset, bits)
    ds = load_digits()
    x = ds.quantised(ds.test_x[:6], net.widths.state_bits)
    core = CoreNet(net)
    res = core.run(x, train=False, record=True)
    want = core.layout.split(res.rec_spikes, canonical=True)
    port = to_torch(net)
    got, preds = run_free_phase(port, x, net)
    n_spikes = 0
    for l in range(1, net.arch.n_layers + 1):
        g = got[l - 1].reshape(len(x), net.hyper.t1, -1).numpy()
        np.testing.assert_array_equal(g, want[l][:, :net.hyper.t1], err_msg=f"layer {l}")
        n_spikes += int(g.sum())
    assert n_spikes > 0
    np.testing.assert_array_equal(preds.numpy(), res.predictions)
    # the pre-processor's input spikes are the core's layer-0 spikes, one step later
    train = input_spike_train(net, x).reshape(len(x), net.hyper.t1, -1).numpy()
    np.testing.assert_array_equal(train[:, 1:], want[0][:, :net.hyper.t1 - 1])
    assert not train[:, 0].any()


def test_port_modules_are_what_neurobench_hooks():
    import snntorch as snn
    net = _net("digits-2c")
    port = to_torch(net)
    convs = [m for m in port.modules() if isinstance(m, torch.nn.Conv2d)]
    lins = [m for m in port.modules() if isinstance(m, torch.nn.Linear)]
    neurons = [m for m in port.modules() if isinstance(m, snn.SpikingNeuron)]
    assert (len(convs), len(lins), len(neurons)) == (2, 1, 3)
    assert [tuple(c.weight.shape) for c in convs] == [(8, 1, 3, 3), (16, 8, 3, 3)]
    for c, w in zip(convs, net.weights_q):
        np.testing.assert_array_equal(c.weight.detach().numpy(), w)
    assert all(m.weight.dtype == torch.float32 for m in convs + lins)

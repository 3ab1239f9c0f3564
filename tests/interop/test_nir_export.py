"""NIR export: written, read back with ``nir.read`` (type-checked), feedback cycles exact.

* every node type and edge, the weights in real units (``w * 2**-e``, ``b / 2**S``)
  and the integers in the metadata, which rebuild the network bit-exactly;
* each feedback path ``fb{l}`` is the exact adjoint of layer ``l``'s forward
  map (``<fb(q), x> = m <q, F(x)>`` with ``F`` = conv then 2x2 sum, or ``W``,
  written here with torch, and ``m`` the feedback multiplier times ``2**-e``);
* snnTorch's own NIR import runs the file (cycles included).
"""
import dataclasses

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the nir package is not installed")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from interop.nir_export import export_nir, load_network_from_nir  # noqa: E402
from neurochip.errors import UserError  # noqa: E402
from neurochip.network import Network, get_preset  # noqa: E402


def _net(preset, bits=8, seed=4):
    p = get_preset(preset)
    return Network.create(p.arch, p.hyper, dataclasses.replace(p.widths, weight_bits=bits),
                          seed=seed, preset=preset)


def _conv_forward(x, w, pad):
    c = F.conv2d(x, w, padding=pad)
    b, ch, h, wd = c.shape
    return c[:, :, :h // 2 * 2, :wd // 2 * 2].reshape(b, ch, h // 2, 2, wd // 2, 2).sum((3, 5))


def _apply(node, x):
    return F.conv2d(x, torch.as_tensor(node.weight), torch.as_tensor(node.bias),
                    stride=tuple(node.stride), padding=tuple(int(v) for v in node.padding))


@pytest.mark.parametrize("preset,nodes", [
    ("digits-2c", {"input", "conv1", "pool1", "lif1", "conv2", "pool2", "lif2", "fc3", "lif3",
                   "fb2_gather", "fb2", "fb3", "flatten", "output"}),
    ("digits-fc", {"input", "fc1", "lif1", "fc2", "lif2", "fb2", "flatten", "output"})])
def test_nir_file_reads_back_with_exact_weights_and_feedback(tmp_path, preset, nodes):
    net = _net(preset)
    path = str(tmp_path / "net.nir")
    assert export_nir(net, path) == path
    g = nir.read(path)
    assert set(g.nodes) == nodes
    assert g.metadata["format"] == "neurochip-nir" and "approximation" in g.metadata
    edges = set(map(tuple, g.edges))
    arch = net.arch
    one = 2.0 ** net.widths.state_bits
    shapes = [tuple(arch.input_shape)] + [tuple(s) if len(s) == 3 else (s[0], 1, 1)
                                          for s in arch.state_shapes()]
    for l, spec in enumerate(arch.layers, start=1):
        name = f"conv{l}" if spec.kind == "conv" else f"fc{l}"
        node = g.nodes[name]
        e = net.weight_exp[l - 1]
        w = np.asarray(net.weights_q[l - 1], np.float64)
        np.testing.assert_array_equal(node.weight.reshape(w.shape), w * 2.0 ** -e)
        np.testing.assert_array_equal(node.bias, net.biases_q[l - 1] / one)
        np.testing.assert_array_equal(node.metadata["weight_q"], net.weights_q[l - 1])
        assert isinstance(g.nodes[f"lif{l}"], nir.LIF)
        if spec.kind == "conv":
            assert isinstance(g.nodes[f"pool{l}"], nir.AvgPool2d)
            assert (name, f"pool{l}") in edges and (f"pool{l}", f"lif{l}") in edges
        else:
            assert (name, f"lif{l}") in edges
        if l >= 2:       # the cycle lif{l} -> fb{l} -> lif{l-1}, and its weights: the adjoint
            assert (f"fb{l}", f"lif{l - 1}") in edges
            gen = torch.Generator().manual_seed(l)
            q = (torch.rand((2,) + shapes[l], generator=gen, dtype=torch.float64) < 0.3).double()
            x = torch.rand((2,) + shapes[l - 1], generator=gen, dtype=torch.float64)
            fb = q
            if f"fb{l}_gather" in g.nodes:
                assert (f"lif{l}", f"fb{l}_gather") in edges
                fb = _apply(g.nodes[f"fb{l}_gather"], fb)
            else:
                assert (f"lif{l}", f"fb{l}") in edges
                fb = fb.reshape(2, -1, 1, 1)
            fb = _apply(g.nodes[f"fb{l}"], fb)
            wt = torch.as_tensor(w)
            fwd = (_conv_forward(x, wt, spec.padding) if spec.kind == "conv"
                   else (x.reshape(2, -1) @ wt.T).reshape((2,) + shapes[l]))
            mult = net.constants().layers[l - 2].fb_mult / 4096 * 2.0 ** -e
            lhs = (fb * x).sum(dim=(1, 2, 3))
            rhs = mult * (q * fwd).sum(dim=(1, 2, 3))
            torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-9)
    back = load_network_from_nir(path)
    assert back.weights_sha256() == net.weights_sha256()
    assert (back.hyper, back.widths, back.weight_exp) == (net.hyper, net.widths, net.weight_exp)


def test_snntorch_imports_and_runs_the_file(tmp_path):
    pytest.importorskip("snntorch", reason="snnTorch is not installed")
    from interop.nir_snntorch import import_snntorch, run_snntorch
    from neurochip.data import load_digits
    from reference.torch_port import input_spike_train
    net = _net("digits")
    net.biases_q[-1][:] = (1 << net.widths.state_bits) // 4      # outputs fire, untrained
    path = str(tmp_path / "net.nir")
    export_nir(net, path)
    _, module = import_snntorch(path)
    ds = load_digits()
    x = ds.quantised(ds.test_x[:4], net.widths.state_bits)
    counts = run_snntorch(module, input_spike_train(net, x, net.hyper.t1 + 1)[:, 1:])
    assert counts.shape == (4, 10) and counts.sum() > 0


def test_bad_paths_are_user_errors(tmp_path):
    net = _net("digits")
    with pytest.raises(UserError, match="does not exist"):
        export_nir(net, str(tmp_path / "no" / "net.nir"))
    with pytest.raises(UserError, match="no such file"):
        load_network_from_nir(str(tmp_path / "missing.nir"))
    max_net = Network.create(net.arch, dataclasses.replace(net.hyper, pool="max"), net.widths, 0)
    with pytest.raises(UserError, match="avg-pool"):
        export_nir(max_net, str(tmp_path / "m.nir"))


def test_snntorch_command_reports_both_errors(tmp_path):
    import subprocess
    import sys
    from tests.paths import ROOT
    pytest.importorskip("snntorch", reason="snnTorch is not installed")
    path = str(tmp_path / "net.nir")
    export_nir(_net("digits"), path)
    r = subprocess.run([sys.executable, "-m", "interop.nir_snntorch", path, "--samples", "6"],
                       cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    out = [l for l in r.stdout.splitlines() if l.startswith(("1x8x8", "  core", "  snnTorch",
                                                             "  same"))]
    assert len(out) == 4 and "digits test[0:6]" in out[0] and "(1 feedback)" in out[0]
    bad = subprocess.run([sys.executable, "-m", "interop.nir_snntorch", path, "--samples", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --samples")

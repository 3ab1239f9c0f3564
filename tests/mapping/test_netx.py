"""The export's netx part loads in the real lava-dl netx and runs in Lava as the file says.

* ``lava.lib.dl.netx.hdf5.Network(net_config=PATH)`` builds the blocks (a
  flatten entry before dense layers after maps, CUBA neurons, no weight clipped);
* the output spikes of a Lava run equal, integer for integer, an independent
  numpy integrate-and-fire simulation of the file's ``layer/*`` entries
  (written here from netx's documented rules: input and bias << 6, threshold << 6,
  spike when ``v > vth``, reset to 0, no leak; per-image reset);
* the ``ep/`` part still rebuilds the network bit-exactly and a width netx
  does not keep is named in one stderr line at export.
"""
import dataclasses

import numpy as np
import pytest

netx = pytest.importorskip("lava.lib.dl.netx", reason="lava-dl (netx) is not installed")
h5py = pytest.importorskip("h5py")

from mapping.export import export_lava, load_network  # noqa: E402
from mapping.netx import input_spikes, run_netx  # noqa: E402
from neurochip.data import load_digits  # noqa: E402
from neurochip.network import Network, get_preset  # noqa: E402


def _net(preset, bits=8, t1=40):
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=t1),
                         dataclasses.replace(p.widths, weight_bits=bits), seed=3, preset=preset)
    net.biases_q[-1][:] = 3 * (1 << net.widths.state_bits) // 10   # outputs fire (+0.3) untrained
    return net


def _corr_stride2(x, w, pad):
    """Plain cross-correlation, stride 2: ``x (Ci, H, W)``, ``w (Co, Ci, A, A)``."""
    co, ci, a, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (xp.shape[1] - a) // 2 + 1
    wo = (xp.shape[2] - a) // 2 + 1
    out = np.zeros((co, ho, wo), np.int64)
    for r in range(ho):
        for c in range(wo):
            patch = xp[:, 2 * r:2 * r + a, 2 * c:2 * c + a]
            out[:, r, c] = (w * patch[None]).sum(axis=(1, 2, 3))
    return out


def _oracle(path, spikes, out_shape):
    """Output spike counts per image of the file's netx blocks (numpy, integers)."""
    with h5py.File(path, "r") as f:
        n = len(f["layer"])
        blocks = []
        for i in range(1, n):
            g = f[f"layer/{i}"]
            kind = g["type"][0].decode()
            if kind == "flatten":
                continue
            blocks.append((kind, g["weight"][()].astype(np.int64), g["bias"][()].astype(np.int64),
                           int(g["neuron/vThMant"][()]), int(g["padding"][0]) if kind == "conv" else 0))
        in_shape = tuple(f["layer/0/shape"][()])
    counts = np.zeros((spikes.shape[0],) + out_shape, np.int64)
    for img in range(spikes.shape[0]):
        v = [None] * len(blocks)
        prev = [None] * len(blocks)          # spikes each block sent at the previous step
        for t in range(spikes.shape[1] + len(blocks)):
            x = spikes[img, t].reshape(in_shape).astype(np.int64) if t < spikes.shape[1] else None
            new = []
            for j, (kind, w, b, vth, pad) in enumerate(blocks):
                src = x if j == 0 else prev[j - 1]     # one step of synaptic delay per block
                if src is None:
                    src_in = None
                elif kind == "conv":
                    src_in = _corr_stride2(src, w, pad)
                else:
                    src_in = w @ src.reshape(-1)
                if src_in is not None:
                    bias = b[:, None, None] if kind == "conv" else b
                    v[j] = (0 if v[j] is None else v[j]) + (src_in << 6) + (bias << 6)
                    s = v[j] > (vth << 6)
                    v[j] = np.where(s, 0, v[j])
                    new.append(s.astype(np.int64))
                else:
                    new.append(None)
            if new[-1] is not None:
                counts[img] += new[-1]
            prev = new
            x = None
    return counts


@pytest.mark.timeout(300)
@pytest.mark.parametrize("preset,bits,blocks", [
    ("digits", 8, "input conv flatten dense"),
    ("digits-2c", 8, "input conv conv flatten dense"),
    ("digits-fc", 12, "input flatten dense dense")])
def test_netx_loads_and_runs_the_forward_approximation(tmp_path, capsys, preset, bits, blocks):
    net = _net(preset, bits)
    path = str(tmp_path / f"{preset}.h5")
    export_lava(net, path)
    warned = capsys.readouterr().err.strip().splitlines()
    assert load_network(path).weights_sha256() == net.weights_sha256()
    with h5py.File(path, "r") as f:
        assert "feed-forward approximation" in f.attrs["netx_part"]
        types = [f[f"layer/{i}/type"][0].decode() for i in range(len(f["layer"]))]
        neurons = {f[f"layer/{i}/neuron/type"][0] for i in range(len(f["layer"]))
                   if f"layer/{i}/neuron" in f}
    assert " ".join(types) == blocks and neurons == {b"CUBA"}
    if bits > 8:      # 12-bit dense weights: rounded to 8 bits, and said so in one line
        assert len(warned) == 1 and "layer 1: 12-bit weights rounded by 4 bits" in warned[0]
    else:
        assert warned == []
    loaded = netx.hdf5.Network(net_config=path)
    assert len(loaded.layers) == net.arch.n_layers
    ds = load_digits()
    x = ds.quantised(ds.test_x[:3], net.widths.state_bits)
    spikes = input_spikes(net, x)
    got = run_netx(path, spikes, net.arch.input_shape)
    want = _oracle(path, spikes, (net.arch.layers[-1].channels,))
    assert got.sum() > 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.timeout(300)
def test_netx_command_reports_both_errors(tmp_path):
    import subprocess
    import sys
    from tests.paths import ROOT
    path = str(tmp_path / "net.h5")
    export_lava(_net("digits-fc"), path)
    r = subprocess.run([sys.executable, "-m", "mapping.netx", path, "--samples", "4"], cwd=ROOT,
                       capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines()           # lava-dl prints its own notes at import
             if l.startswith(("1x8x8", "  core", "  netx", "  same"))]
    assert len(lines) == 4 and "digits test[0:4]" in lines[0] and "core (exact EP network" in lines[1]
    assert "netx part in Lava" in lines[2] and lines[3].startswith("  same prediction:")
    bad = subprocess.run([sys.executable, "-m", "mapping.netx", str(tmp_path / "none.h5")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: Lava export {tmp_path / 'none.h5'}: no such file"]

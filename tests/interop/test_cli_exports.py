"""``python -m neurochip.run --epochs 1 --export-lava net.h5 --export-nir net.nir`` writes both,
lava-dl netx loads the first and ``nir.read`` the second; bad paths are one line, exit 2."""
import subprocess
import sys

import pytest

from tests.paths import ROOT

nir = pytest.importorskip("nir", reason="the nir package is not installed")


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "neurochip.run", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_run_writes_both_exports_and_their_readers_load_them(tmp_path):
    h5, nf = tmp_path / "net.h5", tmp_path / "net.nir"
    r = _run("--epochs", "1", "--quiet", "--export-lava", str(h5), "--export-nir", str(nf))
    assert r.returncode == 0, r.stderr
    graph = nir.read(str(nf))
    assert {"conv1", "pool1", "lif1", "fc2", "lif2", "fb2", "output"} <= set(graph.nodes)
    from interop.nir_export import load_network_from_nir
    from mapping.export import load_network
    assert load_network(str(h5)).weights_sha256() == load_network_from_nir(str(nf)).weights_sha256()
    netx = pytest.importorskip("lava.lib.dl.netx", reason="lava-dl (netx) is not installed")
    loaded = netx.hdf5.Network(net_config=str(h5))
    assert len(loaded.layers) == 2


@pytest.mark.parametrize("flag", ["--export-nir", "--export-lava"])
def test_bad_export_path_is_one_line(tmp_path, flag):
    r = _run("--epochs", "1", "--quiet", flag, str(tmp_path / "no" / "such" / "net.out"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert flag in lines[0]

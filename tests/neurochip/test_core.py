"""The integer core: learning, determinism, thread independence, checkpoints, CLI."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neurochip import numerics as nx
from neurochip.checkpoint import load_checkpoint, save_checkpoint
from neurochip.core import K_EVENTS_FWD, K_SPIKES, CoreNet
from neurochip.data import load_digits
from neurochip.network import Architecture, Hyper, Network, get_preset
from neurochip.trainer import Tally, make_backend, mse_loss, train_step

from tests.helpers import digits_inputs as _digits
from tests.paths import ROOT  # noqa: E402


def _digits_batch(n, sbits=12, start=0):
    ds = load_digits()
    x = ds.quantised(ds.train_x[start:start + n], sbits)
    return x, ds.train_y[start:start + n]


def _net(preset="digits", **hyper):
    p = get_preset(preset)
    import dataclasses
    return Network.create(p.arch, dataclasses.replace(p.hyper, **hyper), p.widths, seed=3)


def test_architecture_shapes_paper():
    arch = Architecture.parse("1x28x28:c128k3-c256k3-f512-f10")
    assert arch.state_shapes() == [(128, 13, 13), (256, 5, 5), (512,), (10,)]
    assert arch.weight_shapes() == [(128, 1, 3, 3), (256, 128, 3, 3), (512, 6400), (10, 512)]
    assert str(arch) == "1x28x28:c128k3-c256k3-f512-f10"


@pytest.mark.parametrize("bad", ["", "28x28:f10", "1x28x28:c128", "1x28x28:f10-c3k3",
                                 "1x4x4:c8k5-f10", "1x28x28:c8k3"])
def test_architecture_errors(bad):
    from neurochip.errors import ArchitectureError
    with pytest.raises(ArchitectureError):
        Architecture.parse(bad)


def test_learning_reduces_loss_on_fixed_batch():
    net = _net(batch_size=40, lrs=(0.5, 0.25))
    x, y = _digits_batch(40)
    be = make_backend(net)
    losses = []
    for _ in range(24):
        res = be.run(x, y, train=False)
        losses.append(mse_loss(net, res.s_free, y))
        train_step(be, net, x, y)
    assert losses[-1] < 0.7 * losses[0], losses
    assert losses[-1] < losses[len(losses) // 2] < losses[0], losses


def test_same_seed_same_weights_and_different_seed_differs():
    shas = []
    for seed in (5, 5, 6):
        p = get_preset("digits")
        net = Network.create(p.arch, p.hyper, p.widths, seed=seed)
        be = make_backend(net)
        x, y = _digits_batch(20)
        for i in range(3):
            train_step(be, net, x, y)
        shas.append(net.weights_sha256())
    assert shas[0] == shas[1] != shas[2]


def test_restore_makes_minus_phase_start_from_free_state():
    """The -beta phase restarts from the complete free state (incl. spikes in flight)."""
    net = _net()
    x, y = _digits_batch(4)
    core = CoreNet(net)
    res = core.run(x, y, train=True, record=True)
    st = res.rec_state
    # the -beta phase restarted from the free state: its first step equals the +beta phase's
    # first step except for the nudge, so layers far from the output agree exactly at step 1.
    t1, t2 = net.hyper.t1, net.hyper.t2
    spk = res.rec_spikes
    out_off = core.layout.offsets[-1]
    assert np.array_equal(spk[:, t1, :out_off], spk[:, t1 + t2, :out_off])
    # ... while the output already differs somewhere over the two phases
    assert not np.array_equal(spk[:, t1:t1 + t2], spk[:, t1 + t2:])
    assert st.shape == (4, 3, 4, core.layout.n_all)


def test_counts_are_consistent():
    net = _net()
    x, y = _digits_batch(6)
    res = CoreNet(net).run(x, y, train=True, record=True)
    # spikes counted equal the recorded rasters
    lay = CoreNet(net).layout
    for l, (o, n) in enumerate(zip(lay.offsets, lay.sizes)):
        assert res.counts[:, :, l, K_SPIKES].sum() == res.rec_spikes[:, :, o:o + n].sum()
    assert res.counts[:, :, 1, K_EVENTS_FWD].sum() > 0


def test_registers_stay_within_declared_widths():
    """Debug assertion of docs/numerics.md §2 on recorded end-of-phase states."""
    net = _net()
    x, y = _digits_batch(8)
    res = CoreNet(net).run(x, y, train=True, record=True)
    one = 1 << net.widths.state_bits
    s, dec, psi, encp = (res.rec_state[:, :, k] for k in range(4))
    assert s.min() >= 0 and s.max() <= one
    assert encp.min() >= 0 and encp.max() <= one
    for reg in (dec, psi):
        assert reg.min() >= nx.REG_MIN and reg.max() <= nx.REG_MAX
    tm = (1 << net.widths.trace_bits) - 1
    assert res.traces.min() >= 0 and res.traces.max() <= tm
    lo, hi = nx.signed_range(net.widths.weight_bits)
    for w in net.weights_q:
        assert w.min() >= lo and w.max() <= hi


def test_checkpoint_roundtrip_exact(tmp_path):
    net = _net()
    be = make_backend(net)
    x, y = _digits_batch(20)
    train_step(be, net, x, y)
    path = str(tmp_path / "n.npz")
    save_checkpoint(path, net, {"epoch": 1})
    back, training = load_checkpoint(path)
    assert training == {"epoch": 1}
    assert back.weights_sha256() == net.weights_sha256()
    assert back.hyper == net.hyper and back.widths == net.widths and back.arch == net.arch
    assert back.updates == net.updates and back.weight_exp == net.weight_exp
    a = CoreNet(net).run(x, y, train=True)
    b = CoreNet(back).run(x, y, train=True)
    assert np.array_equal(a.traces, b.traces)


def _cli(*args, env=None, timeout=600):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "neurochip.run", *args], capture_output=True,
                          text=True, cwd=ROOT, env=e, timeout=timeout)


@pytest.mark.parametrize("args,needle", [
    (["--bits", "1"], "--bits"), (["--bits", "40"], "--bits"), (["--t1", "0"], "--t1"),
    (["--beta", "0"], "--beta"), (["--preset", "nope"], "unknown preset"),
    (["--arch", "1x8x8:q3"], "malformed"), (["--epsilon", "1.5"], "--epsilon"),
    (["--lrs", "0.1"], "--lrs"), (["--seed", "-1"], "--seed"),
    (["--arch", "1x28x28:c8k3-f10"], "shape"),
    (["--json", "/nonexistent-dir/x.json"], "--json"),
    (["--load", "/nonexistent.npz"], "no such file"),
])
def test_cli_bad_input_one_line_exit_2(args, needle):
    r = _cli(*args, "--epochs", "1", "--quiet")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert needle in lines[0]


def test_cli_threads_independent_and_json(tmp_path):
    shas = []
    for threads in ("1", "2"):
        out = tmp_path / f"o{threads}.json"
        r = _cli("--bits", "8", "--epochs", "1", "--train-samples", "200", "--test-samples", "50",
                 "--quiet", "--json", str(out), env={"NUMBA_NUM_THREADS": threads})
        assert r.returncode == 0, r.stderr
        data = json.loads(out.read_text())
        for key in ("test_error", "train_error", "seconds", "bits", "dataset", "preset",
                    "spikes_per_sample", "saturations", "weights_sha256"):
            assert key in data
        assert 0 <= data["test_error"] <= 1 and 0 <= data["train_error"] <= 1
        shas.append(data["weights_sha256"])
    assert shas[0] == shas[1]


def test_cli_save_then_load(tmp_path):
    ck = tmp_path / "net.npz"
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    r = _cli("--epochs", "1", "--train-samples", "200", "--test-samples", "60", "--quiet",
             "--save", str(ck), "--json", str(out1))
    assert r.returncode == 0, r.stderr
    r = _cli("--load", str(ck), "--test-samples", "60", "--train-samples", "200", "--quiet",
             "--json", str(out2))
    assert r.returncode == 0, r.stderr
    a, b = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert a["weights_sha256"] == b["weights_sha256"]
    assert a["test_error"] == b["test_error"] and a["test_confusion"] == b["test_confusion"]
    # the confusion counts [true label][predicted class] of the 60 test images the error counts
    confusion = np.array(b["test_confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 60
    assert 60 - np.trace(confusion) == round(b["test_error"] * 60)
    np.testing.assert_array_equal(confusion.sum(axis=1),
                                  np.bincount(load_digits().test_y[:60], minlength=10))
    for c, row in enumerate(confusion):
        want = None if row.sum() == 0 else 1 - row[c] / row.sum()
        assert b["test_error_by_class"][c] == (None if want is None else pytest.approx(want))
    # --load trained nothing: no pass over the training images unless --eval-train asks for one
    assert b["train_error"] is None and "not measured" in b["train_error_method"]
    assert "train error        -" in r.stdout
    out3 = tmp_path / "c.json"
    r = _cli("--load", str(ck), "--test-samples", "60", "--train-samples", "200", "--quiet",
             "--eval-train", "--json", str(out3))
    assert r.returncode == 0, r.stderr
    c = json.loads(out3.read_text())
    assert c["test_error"] == a["test_error"]
    assert c["train_error_method"] == "free-phase pass after training"
    assert 0 <= c["train_error"] <= 1 and c["train_error"] * 200 == round(c["train_error"] * 200)


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

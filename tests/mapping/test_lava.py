"""Lava mapping == Numba core, bit for bit (lava-nc 0.10, Python 3.10 only).

Every comparison is exact equality of integers: spikes of every layer at every
step, the state at the end of every phase, traces, counters, weights after the
host-side update, and the next sample.  Small networks and short phases keep
the whole file to about a minute on 2 cores; every Lava runtime is stopped in
``finally`` and the last test checks that no child process is left.
"""
import dataclasses
import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from mapping.builder import _allow_lava_fork  # noqa: E402

_allow_lava_fork()     # another test may have fixed the start method already
# lava-nc 0.10 (Python 3.10 only) is an optional third-party package; it sets 'fork' at import
pytest.importorskip("lava.magma.core.process.process")
pytest.importorskip("lava.magma.core.run_configs")

from neurochip import learning  # noqa: E402
from neurochip.core import CoreNet  # noqa: E402
from neurochip.data import load_digits  # noqa: E402
from neurochip.network import Network, get_preset  # noqa: E402
from neurochip.trainer import make_backend, train_step  # noqa: E402

from mapping.backend import LavaBackend  # noqa: E402
from mapping.builder import to_lava  # noqa: E402
from mapping.compare import compare_batches, n_differ  # noqa: E402

from tests.paths import ROOT  # noqa: E402


def _net(preset, bits=8, seed=1, t1=12, t2=4, updates=0):
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=t1, t2=t2, batch_size=4),
                         dataclasses.replace(p.widths, weight_bits=bits), seed=seed)
    if updates:
        x, y = _digits(4 * updates, test=False, start=100)
        be = make_backend(net)
        for i in range(updates):
            train_step(be, net, x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
    return net


def _digits(n, test=True, start=0, sbits=12):
    ds = load_digits()
    xs, ys = (ds.test_x, ds.test_y) if test else (ds.train_x, ds.train_y)
    return ds.quantised(xs[start:start + n], sbits), ys[start:start + n]


# ------------------------------------------------------------- primitives
@pytest.mark.timeout(120)
def test_lava_conv_and_dense_digits_are_exact():
    """Lava's Conv with the flipped fused WHC kernel, and Dense digits, equal M @ q."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from mapping import layout as lay
    net = Network.create("3x7x6:c4k3p1-f5", seed=4,
                         widths=dataclasses.replace(get_preset("digits").widths, weight_bits=12))
    e = lay.edges(net)[0]
    rng = np.random.default_rng(0)
    steps = 4
    q = rng.integers(0, 2, size=(steps, 3 * 7 * 6))                  # canonical per step
    src = Source(data=np.moveaxis(lay.to_lava(q, (3, 7, 6)), 0, -1).astype(np.int32))
    conv = Conv(weight=lay.lava_conv_weight(e.kernel(net)).astype(np.int32),
                input_shape=(6, 7, 3), padding=1, stride=2)
    m = e.matrix(net)
    wide = rng.integers(-2047, 2048, size=(5, 3 * 7 * 6))   # 12-bit, WHC columns: two digits
    digits = lay.split_digits(wide, lay.n_digits(2047))
    dense = [Dense(weights=(2 * d).astype(np.int32), weight_exp=lay.digit_weight_exp(k),
                   num_weight_bits=8, sign_mode=SignMode.MIXED) for k, d in enumerate(digits)]
    sink_c = Sink(shape=conv.a_out.shape, buffer=steps + 1)
    sink_d = Sink(shape=(5,), buffer=steps + 1)
    src.s_out.connect(conv.s_in)
    conv.a_out.connect(sink_c.a_in)
    for d in dense:
        src.s_out.flatten().connect(d.s_in)
        d.a_out.connect(sink_d.a_in)
    try:
        src.run(condition=RunSteps(num_steps=steps + 1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        got_c = sink_c.data.get()
        got_d = sink_d.data.get()
    finally:
        src.stop()
    for t in range(steps):    # a connection is a 1-step delay
        qv = lay.to_lava(q[t], (3, 7, 6)).ravel()
        assert np.array_equal(got_c[..., t + 1].ravel(), m @ qv)
        assert np.array_equal(got_d[:, t + 1], wide @ qv)


# -------------------------------------------------------- inference, training
@pytest.mark.timeout(180)
@pytest.mark.parametrize("preset,bits", [("digits", 8), ("digits-fc", 4), ("digits-2c", 8),
                                         ("digits-2c", 16)])
def test_inference_matches_core(preset, bits):
    net = _net(preset, bits=bits, updates=2)
    x, y = _digits(2)
    ref = CoreNet(net).run(x, y, train=False, record=True)
    with to_lava(net, train=False, probes=True) as ln:
        if bits == 16:   # Conv would wrap at 24 bits: layer 2 falls back to Sparse, 3 digits
            fwd2 = [c for c in ln.connections if c.layer == 2 and c.direction == "fwd"][0]
            assert fwd2.impl == "sparse" and fwd2.n_digits == 3
        got = ln.run(x, y)
    cmp = compare_batches(ref, got, CoreNet(net).layout, train=False, net=net)
    assert cmp.total == 0, "\n".join(cmp.lines())
    assert ref.rec_spikes.sum() > 0


@pytest.mark.timeout(240)
@pytest.mark.parametrize("preset,bits,fb", [("digits", 8, "sparse"), ("digits-fc", 4, "sparse"),
                                            ("digits-2c", 4, "sparse"), ("digits-2c", 8, "dense")])
def test_training_update_and_next_sample_match_core(preset, bits, fb):
    net = _net(preset, bits=bits, updates=2)
    x, y = _digits(4, test=False, start=300)
    net_c, net_l = net.copy(), net.copy()
    core = make_backend(net_c)
    with LavaBackend(net_l, conv_feedback=fb) as lava:
        for step in range(2):       # two minibatches of 2: three phases, update, then the next
            sl = slice(2 * step, 2 * step + 2)
            rc = core.run(x[sl], y[sl], train=True, record=True)
            rl = lava.run(x[sl], y[sl], train=True, record=True)
            cmp = compare_batches(rc, rl, core.core.layout, train=True, net=net)
            assert cmp.total == 0, "\n".join(cmp.lines(f"step {step}"))
            for n_, be, r in ((net_c, core, rc), (net_l, lava, rl)):
                learning.update_network(n_, learning.contrastive(n_, be.layer_traces(r)))
                be.refresh()
            assert sum(n_differ(a, b) for a, b in zip(net_c.weights_q, net_l.weights_q)) == 0
            assert sum(n_differ(a, b) for a, b in zip(net_c.biases_q, net_l.biases_q)) == 0
        assert sum(n_differ(a, b) for a, b in zip(net.weights_q, net_c.weights_q)) > 0
        ln = lava.lava   # what the processes hold now, read back
        for got, want in zip(ln.read_weights(), ln.expected_weights(net_c)):
            assert np.array_equal(got["values"], want["values"]), (got["layer"], got["direction"])
        for l, proc in enumerate(ln.neurons, start=1):
            assert np.array_equal(proc.bias.get().astype(np.int64), net_c.biases_q[l - 1])
        if fb == "sparse" and preset == "digits-2c":
            assert ln.rebuilds >= 1     # Sparse cannot be set in Lava 0.10: rebuilt
        # the trainer itself runs through Lava unchanged
        xs, ys = _digits(2, test=False, start=400)
        sc, sl_ = train_step(core, net_c, xs, ys), train_step(lava, net_l, xs, ys)
        assert np.array_equal(sc.predictions, sl_.predictions) and sc.loss == sl_.loss
        assert all(np.array_equal(a, b) for a, b in zip(net_c.weights_q, net_l.weights_q))


@pytest.mark.timeout(180)
def test_sparse_and_dense_forward_edges_match_core():
    net = _net("digits-2c", bits=8)
    x, y = _digits(1)
    ref = CoreNet(net).run(x, y, train=True, record=True)
    for fwd in ("sparse", "dense"):
        with to_lava(net, train=True, probes=True, conv_forward=fwd) as ln:
            got = ln.run(x, y)
        assert compare_batches(ref, got, CoreNet(net).layout, train=True, net=net).total == 0, fwd


@pytest.mark.timeout(180)
def test_export_loads_back_into_identical_processes(tmp_path):
    from mapping.export import export_lava, load_lava
    net = _net("digits", bits=8, updates=1)
    path = str(tmp_path / "digits.h5")
    export_lava(net, path)
    x, y = _digits(1, start=7)
    ref = CoreNet(net).run(x, y, train=True, record=True)
    ln = load_lava(path, train=True, probes=True)
    try:
        assert ln.network.weights_sha256() == net.weights_sha256()
        got = ln.run(x, y)
    finally:
        ln.stop()
    assert compare_batches(ref, got, CoreNet(net).layout, train=True, net=net).total == 0


@pytest.mark.timeout(300)
def test_check_cli_reports_zero_differences():
    cmd = [sys.executable, "-m", "mapping.check", "--bits", "4", "--images", "1", "--train",
           "--updates", "1", "--t1", "10", "--t2", "3", "--preset", "digits-fc"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines[-1] == "differing integers: 0"
    assert any(l.startswith("time per step") for l in lines)


def test_no_lava_process_left_behind():
    assert multiprocessing.active_children() == []

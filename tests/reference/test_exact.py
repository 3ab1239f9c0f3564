"""The PyTorch mirror (reference/) against the Numba core: exact equality, integer by integer.

Every comparison is ``np.array_equal`` / ``torch.equal`` / ``count_nonzero(a != b) == 0``:
spikes of every step, end-of-phase states (s, dec, psi, enc_prev), traces,
max-pool argmax, counters, contrastive sums and weights after each update.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch

from neurochip import learning
from neurochip import numerics as nx
from neurochip.data import load_digits
from neurochip.network import Hyper, Network, Widths
from neurochip.trainer import NumbaBackend, make_backend, train_step
from reference import check, ops
from reference.backend import TorchBackend
from reference.common import build_network, minibatches
from reference.mirror import Mirror, TorchTraces, contrastive_sums

SAMPLES = 4
UPDATES = 2


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds.quantised(ds.train_x, 12), ds.train_y.astype(np.int64)


def _args(**kw):
    base = dict(preset="digits", arch=None, bits=8, pool="avg", samples=SAMPLES, updates=UPDATES,
                seed=0, t1=None, t2=None, data_dir=None, device="cpu")
    base.update(kw)
    return argparse.Namespace(**base)


def _assert_exact(res: check.CheckResult, spikes_min: int = 1):
    t = res.tally
    bad = {k: v for k, v in t.diff.items() if v}
    assert res.differing == 0, f"differing integers: {bad}"
    assert res.sha_numba == res.sha_torch
    assert res.spikes >= spikes_min        # the comparison is not vacuous
    for col in ("spikes", "s", "dec", "psi", "enc_prev", "trace", "counts", "G", "weights"):
        assert t.column(col)[1] > 0, col


def _check(digits, net, samples=SAMPLES, updates=UPDATES, device="cpu"):
    x, y = digits
    batches = minibatches(net.seed, len(y), samples, updates)
    return check.compare_networks(net, x, y, batches, device)


# ----------------------------------------------------------------- ops twins
def test_ops_twins_are_the_numerics_code():
    """No rule is rewritten: each twin runs the very code object of ``op.py_func``."""
    for name, twin in ops.OPS.items():
        assert twin.__code__ is getattr(nx, name).py_func.__code__
    assert {"round_shift", "saturate", "encoder_step", "align_input", "decoder_step",
            "nudge_term", "state_step", "trace_latch", "random_bits", "stochastic_shift",
            "mix32", "mul32"} <= set(ops.OPS)


def test_ops_twins_on_tensors_equal_compiled_ops():
    rng = np.random.default_rng(5)
    a = rng.integers(-2 ** 23, 2 ** 23, 300)
    b = rng.integers(-2 ** 23, 2 ** 23, 300)
    s = rng.integers(0, 4097, 300)
    ta, tb, ts = (torch.as_tensor(v) for v in (a, b, s))
    for k in (-2, 0, 1, 12):
        assert torch.equal(ops.round_shift(ta, k),
                           torch.as_tensor([nx.round_shift(int(v), k) for v in a]))
    p, q = ops.encoder_step(ta, ts, ts.flip(0), 2048, 1024, 2048)
    ref = [nx.encoder_step(int(x), int(y), int(z), 2048, 1024, 2048)
           for x, y, z in zip(a, s, s[::-1])]
    assert torch.equal(p, torch.as_tensor([r[0] for r in ref]))
    assert torch.equal(q, torch.as_tensor([bool(r[1]) for r in ref]))
    assert torch.equal(ops.align_input(ta, tb, 3, 2048, 1, 5),
                       torch.as_tensor([nx.align_input(int(x), int(y), 3, 2048, 1, 5)
                                        for x, y in zip(a, b)]))
    assert torch.equal(ops.state_step(ts, ta, 2048, 4096),
                       torch.as_tensor([nx.state_step(int(x), int(y), 2048, 4096)
                                        for x, y in zip(s, a)]))
    idx = torch.arange(300)
    assert torch.equal(ops.random_bits(7, 3, 5, idx),
                       torch.as_tensor([nx.random_bits(7, 3, 5, i) for i in range(300)]))


# ------------------------------------------------- presets, pools and widths
@pytest.mark.parametrize("bits", [4, 8, 16])
@pytest.mark.parametrize("preset,pool", [("digits", "avg"), ("digits", "max"),
                                         ("digits-2c", "avg"), ("digits-2c", "max"),
                                         ("digits-fc", "avg")])   # fc only: the pool has no effect
def test_presets_exact(digits, preset, pool, bits):
    net = build_network(_args(preset=preset, pool=pool, bits=bits))
    _assert_exact(_check(digits, net))


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("arch", [
    "1x8x8:c4k3p1-c6k2p1-f10",     # second conv drops a row/col (5x5 -> 2x2)
    "1x8x8:c3k2p2-c5k3-f7-f10",    # padding 2, floor drop twice, fc -> fc feedback
    "1x8x8:c4k4p2-f10",            # even kernel, 9x9 -> 4x4
    "1x8x8:c32k3p1-c40k2p1-f36-f10",  # >= 32 channels: spikes of one position added as a group
])
def test_padded_and_odd_convs_exact(digits, arch, pool):
    net = build_network(_args(preset="digits-2c", arch=arch, pool=pool, bits=8, t1=20, t2=6))
    _assert_exact(_check(digits, net, samples=3))


def test_register_saturations_exact(digits):
    """Inputs that saturate the 24-bit register are clamped and counted alike."""
    from neurochip.core import K_SAT_INPUT
    hyp = Hyper(t1=15, t2=5, lrs=(0.1, 0.1, 0.1), batch_size=3, pool="max")
    net = Network.create("1x8x8:c4k3p1-f12-f10", hyp,
                         Widths(weight_bits=8, state_bits=16, bias_bits=24), seed=3)
    net.weight_exp = [0, 0, 1]       # huge weights: the 24-bit input register saturates
    x, y = digits
    x16 = x * 16                     # the same pixels with S = 16
    res = check.compare_networks(net, x16, y, minibatches(3, len(y), 3, 2))
    _assert_exact(res)
    r = NumbaBackend(net.copy()).run(x16[:3], y[:3])
    assert r.counts[..., K_SAT_INPUT].sum() > 0


def test_weight_saturations_exact(digits):
    """A large learning rate at 4 bits: weights and biases saturate, alike on both sides."""
    net = build_network(_args(preset="digits", pool="avg", bits=4, t1=15, t2=5, samples=5))
    net.hyper = dataclasses.replace(net.hyper, lrs=(10.0, 10.0))
    res = _check(digits, net, samples=5)
    _assert_exact(res)
    ref = net.copy()
    be = NumbaBackend(ref)
    x, y = digits
    sat = 0
    for idx in minibatches(net.seed, len(y), 5, UPDATES):
        sat += train_step(be, ref, x[idx], y[idx]).stats.weight_saturations.sum()
    assert sat > 0


def test_other_widths_and_seed(digits):
    """State, trace and bias widths other than the defaults, and a large seed."""
    hyp = Hyper(t1=15, t2=5, lrs=(0.1, 0.1, 0.05), batch_size=3, pool="avg")
    net = Network.create("1x8x8:c8k3p1-c16k3p1-f10", hyp,
                         Widths(weight_bits=6, state_bits=14, trace_bits=10, bias_bits=20),
                         seed=2 ** 32 - 5)
    x, y = digits
    res = check.compare_networks(net, x * 4, y, minibatches(net.seed, len(y), 3, 2))
    _assert_exact(res)


# ------------------------------------------------------------- backend API
def test_backend_free_phase_and_no_labels(digits):
    x, y = digits
    net = build_network(_args(preset="digits-2c", pool="max", t1=15, t2=5))
    nb, tb = NumbaBackend(net), make_backend(net, "torch", device="cpu")
    assert isinstance(tb, TorchBackend)
    for labels in (y[:5], None):
        rn = nb.run(x[:5], labels, train=False, record=True)
        rt = tb.run(x[:5], labels, train=False, record=True)
        for f in ("traces", "pool_idx", "s_free", "predictions", "counts", "rec_spikes",
                  "rec_state"):
            a, b = getattr(rn, f), getattr(rt, f)
            assert a.dtype == b.dtype and a.shape == b.shape, f
            assert np.array_equal(a, b), f
    rn, rt = nb.run(x[:5], y[:5]), tb.run(x[:5], y[:5])
    assert rt.rec_spikes is None and rt.rec_state is None
    for a, b in zip(nb.layer_traces(rn), tb.layer_traces(rt)):
        assert np.array_equal(a.plus, b.plus) and np.array_equal(a.minus, b.minus)
        assert (a.idx_plus is None) == (b.idx_plus is None)
        if a.idx_plus is not None:
            assert np.array_equal(a.idx_plus, b.idx_plus)
            assert np.array_equal(a.idx_minus, b.idx_minus)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_trainer_with_torch_backend_same_sha(digits, pool):
    """train_step through make_backend(net, 'torch') gives the default backend's weights."""
    x, y = digits
    base = build_network(_args(preset="digits", pool=pool, t1=15, t2=5, samples=5))
    shas = []
    for name in ("numba", "torch"):
        net = base.copy()
        be = make_backend(net, name, **({"device": "cpu"} if name == "torch" else {}))
        for idx in minibatches(net.seed, len(y), 5, 3):
            train_step(be, net, x[idx], y[idx])
        shas.append(net.weights_sha256())
    assert shas[0] == shas[1] != base.weights_sha256()


# -------------------------------------------- the mirror's own learning rule
def _random_traces(rng, net, bsz):
    arch = net.arch
    tmax = (1 << net.widths.trace_bits) - 1
    shapes = [arch.input_shape] + arch.state_shapes()
    np_tr, t_tr = [], []
    for l, shp in enumerate(shapes):
        p = rng.integers(0, tmax + 1, (bsz,) + tuple(shp))
        m = rng.integers(0, tmax + 1, (bsz,) + tuple(shp))
        lt = learning.LayerTraces(p, m)
        tt = TorchTraces(torch.as_tensor(p), torch.as_tensor(m))
        if l > 0 and arch.layers[l - 1].kind == "conv" and net.hyper.pool == "max":
            ip = rng.integers(0, 4, (bsz,) + tuple(shp)).astype(np.int8)
            im = rng.integers(0, 4, (bsz,) + tuple(shp)).astype(np.int8)
            lt.idx_plus, lt.idx_minus = ip, im
            tt.idx_plus, tt.idx_minus = torch.as_tensor(ip).long(), torch.as_tensor(im).long()
        np_tr.append(lt)
        t_tr.append(tt)
    return np_tr, t_tr


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("bits,trace_bits,lr", [(4, 8, 5.0), (8, 8, 0.1), (16, 12, 0.5),
                                                (8, 16, 10.0)])
def test_mirror_update_equals_learning_py(pool, bits, trace_bits, lr):
    """Random traces: torch contrastive sums + stochastic rounding == neurochip.learning."""
    rng = np.random.default_rng(bits * 100 + trace_bits)
    hyp = Hyper(t1=5, t2=2, lrs=(lr, lr, lr, lr), batch_size=5, pool=pool)
    net = Network.create("1x9x9:c3k3p1-c4k2-f6-f5", hyp,
                         Widths(weight_bits=bits, trace_bits=trace_bits), seed=bits)
    net.updates = 17
    np_tr, t_tr = _random_traces(rng, net, 5)
    g_np = learning.contrastive(net, np_tr)
    g_t = contrastive_sums(net, t_tr)
    for (a, ab), (b, bb) in zip(g_np, g_t):
        assert np.array_equal(a, b.numpy()) and np.array_equal(ab, bb.numpy())
    mirror = Mirror(net)
    ref = net.copy()
    stats_ref = learning.update_network(ref, g_np)
    stats_t = mirror.update(g_t, batch=5)
    assert mirror.updates == ref.updates == 18
    for l in range(net.arch.n_layers):
        assert np.array_equal(mirror.weights[l].numpy(), ref.weights_q[l])
        assert np.array_equal(mirror.biases[l].numpy(), ref.biases_q[l])
    for f in ("weight_writes", "weight_saturations", "bias_saturations"):
        assert np.array_equal(getattr(stats_ref, f), getattr(stats_t, f)), f
    assert np.array_equal(stats_t.products, learning.learning_products(net, 5))
    assert stats_t.weight_writes.sum() > 0
    if lr >= 5.0:
        assert stats_t.weight_saturations.sum() > 0
    mirror.store(net)
    assert net.weights_sha256() == ref.weights_sha256() == mirror.weights_sha256()


# ------------------------------------------------------------------ the CLI
def test_check_cli_exact_and_last_line(capsys):
    rc = check.main(["--preset", "digits-2c", "--bits", "8", "--pool", "max", "--samples", "3",
                     "--updates", "2", "--t1", "12", "--t2", "4"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert out[-1] == "differing integers: 0"


@pytest.mark.parametrize("argv", [["--pool", "min"], ["--bits", "1"], ["--samples", "0"],
                                  ["--updates", "-1"], ["--preset", "nope"], ["--frobnicate"],
                                  ["--bits", "eight"], ["--device", "tpu"]])
def test_check_cli_bad_arguments(argv, capsys):
    assert check.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_check_detects_a_difference(digits, monkeypatch):
    """Sanity of the checker: a one-unit change in the mirror's fused kernel is caught."""
    import reference.mirror as mirror_mod
    orig = mirror_mod.fused_kernel

    def off_by_one(w):
        wf = orig(w)
        wf[0, 0, 1, 1] += 1
        return wf
    monkeypatch.setattr(mirror_mod, "fused_kernel", off_by_one)
    net = build_network(_args(preset="digits", t1=12, t2=4))
    res = _check(digits, net, samples=3, updates=1)
    assert res.differing > 0
    assert res.tally.column("spikes")[0] > 0


# ---------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("pool", ["avg", "max"])
def test_cuda_exact(digits, pool):
    net = build_network(_args(preset="digits-2c", pool=pool, bits=8))
    _assert_exact(_check(digits, net, device="cuda"))

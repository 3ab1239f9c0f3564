"""Fast tests of the real-valued reference (reference.real) and the BPTT baselines."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurochip.network import Hyper, Network, Widths, get_preset  # noqa: E402
from reference.bptt import bptt_gradients, bptt_train_step  # noqa: E402
from reference.real import RealModel, float_init, mse, onehot  # noqa: E402

torch.set_num_threads(1)

SEED = 0
TINY = "1x8x8:c4k3p1-c6k3p1-f10"     # conv -> conv (alpha feedback) -> fc, 8x8 -> 4x4 -> 2x2


def _tiny(pool="avg", spiking=False, seed=SEED, **kw):
    h = Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.25, theta=0.5, t1=60, t2=30,
              lrs=(0.2, 0.2, 0.1), batch_size=8, pool=pool)
    net = Network.create(TINY, h, seed=seed)
    ws, bs = float_init(net.arch, seed)   # seed 0: every layer has units inside (0, 1)
    return RealModel(net.arch, ws, bs, dataclasses.replace(h, **kw), spiking=spiking)


def _batch(n=8, seed=0):
    g = np.random.default_rng(seed)
    return torch.as_tensor(g.uniform(0, 1, (n, 1, 8, 8))), g.integers(0, 10, n)


def _cos(a, b):
    a = torch.cat([a[0].reshape(-1), a[1]])
    b = torch.cat([b[0].reshape(-1), b[1]])
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_crnn_ep_matches_bptt_small_beta(pool):
    m = _tiny(pool)
    x, y = _batch()
    ep = m.ep(x, y, beta=1e-4)
    bp = bptt_gradients(m, x, y, steps=m.hyper.t1)
    for l, (ge, gb) in enumerate(zip(ep.grads, bp.grads)):
        assert float(torch.cat([gb[0].reshape(-1), gb[1]]).norm()) > 0, l
        assert _cos(ge, gb) > 0.99, (pool, l, _cos(ge, gb))


def test_one_sided_ep_matches_bptt_too():
    # one-sided EP divides the free phase's residual drift by beta: it needs a
    # converged free phase (the symmetric estimate cancels the drift)
    m = _tiny("avg", t1=300)
    x, y = _batch()
    ep = m.ep(x, y, beta=1e-5, symmetric=False)
    bp = bptt_gradients(m, x, y)
    assert all(_cos(ge, gb) > 0.99 for ge, gb in zip(ep.grads, bp.grads))


@pytest.mark.parametrize("spiking", [False, True])
def test_ep_training_reduces_loss_on_a_fixed_batch(spiking):
    m = _tiny("avg", spiking=spiking, lrs=(0.5, 0.5, 0.3))
    x, y = _batch(16)
    yoh = onehot(y, 10)
    before = float(mse(m.free_phase(x).s[-1], yoh))
    for _ in range(15):
        m.train_step(x, y)
    after = float(mse(m.free_phase(x).s[-1], yoh))
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("spiking", [False, True])
def test_bptt_training_reduces_loss_on_a_fixed_batch(spiking):
    m = _tiny("avg", spiking=spiking, lrs=(0.5, 0.5, 0.3))
    x, y = _batch(16)
    first = bptt_train_step(m, x, y).loss
    for _ in range(15):
        last = bptt_train_step(m, x, y).loss
    assert last < 0.8 * first, (first, last)


def _saved_bytes(fn):
    seen, total = set(), [0]

    def pack(t):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total[0] += t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


@pytest.mark.parametrize("spiking", [False, True])
def test_ep_memory_is_independent_of_the_number_of_steps(spiking):
    x, y = _batch()
    held, saved = [], []
    for t in (20, 80):
        m = _tiny("avg", spiking=spiking, t1=t, t2=t // 4)
        peak = [0]

        def probe(k, st):
            peak[0] = max(peak[0], st.nbytes())
        saved.append(_saved_bytes(lambda: m.train_step(x, y, callback=probe)))
        held.append(peak[0])
    assert saved == [0, 0]            # no autograd graph at all
    assert held[0] == held[1] > 0      # the state does not grow with T


def test_bptt_memory_grows_linearly_with_the_number_of_steps():
    x, y = _batch()
    m = _tiny("avg", spiking=True)
    b1 = _saved_bytes(lambda: bptt_gradients(m, x, y, steps=20))
    b2 = _saved_bytes(lambda: bptt_gradients(m, x, y, steps=40))
    assert 1.8 < b2 / b1 < 2.2


def test_input_spike_rate_tracks_the_pixels():
    m = _tiny("avg", spiking=True, lam=0.6)
    x, _ = _batch(4)
    st = m.init_state(x)
    total = torch.zeros_like(x)
    steps = 200
    for _ in range(steps):
        st = m.step(st)
        total += st.spk[0]
    # predictive sigma-delta: sum of spikes tracks sum of inputs within a couple of spikes
    assert float((total - steps * x).abs().max()) <= 2.0


def test_float_init_is_the_unrounded_network_init():
    p = get_preset("digits-2c")
    for bits in (4, 8, 16):
        net = Network.create(p.arch, p.hyper, Widths(weight_bits=bits), seed=7)
        ws, bs = float_init(net.arch, 7)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        for w, wq, e in zip(ws, net.weights_q, net.weight_exp):
            assert np.array_equal(np.clip(np.rint(w * 2.0 ** e), lo, hi), wq)
        m = RealModel.from_network(net, weights="network")
        assert all(np.array_equal(a, b) for a, b in zip(m.to_network(net).weights_q,
                                                        net.weights_q))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_real_spiking_model_follows_the_integer_core(pool):
    """At 16-bit weights and states the real model emits the core's spikes for the
    first steps and stays close afterwards (avg-pool)."""
    from neurochip.data import load_digits
    from neurochip.trainer import make_backend
    from reference.studies.quantisation import matched_hyper
    p = get_preset("digits-2c")
    net = Network.create(p.arch, dataclasses.replace(p.hyper, pool=pool),
                         Widths(weight_bits=16, state_bits=16, trace_bits=16, bias_bits=18), seed=1)
    ds = load_digits()
    x_fp = ds.quantised(ds.train_x[:20], 16)
    res = make_backend(net, "numba").run(x_fp, ds.train_y[:20], train=False, record=True)
    lay = make_backend(net, "numba").core.layout
    m = RealModel.from_network(net, weights="network", **matched_hyper(net))
    st = m.init_state(m.inputs(x_fp, 1 << 16))
    for k in range(8):
        st = m.step(st)
        spikes = lay.split(res.rec_spikes[:, k].astype(np.int64))
        for l, q in enumerate(spikes):
            assert np.array_equal(q, st.spk[l].reshape(20, -1).numpy().astype(np.int64)), (k, l)
    if pool == "avg":
        st = m.run(st, net.hyper.t1 - 8)
        s_int = lay.split(res.rec_state[:, 0, 0])[-1] / (1 << 16)
        assert np.sqrt(np.mean((s_int - st.s[-1].numpy()) ** 2)) < 0.02

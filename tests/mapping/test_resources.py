"""Lava mapping without Lava: geometry, digits, HDF5 export, Loihi resource checks."""
import dataclasses

import numpy as np
import pytest

from neurochip.network import Network, get_preset

from mapping import layout as lay
from mapping.layout import MappingError
from mapping.resources import LOIHI, ResourceError, check_resources


def _net(preset="digits", seed=1, **widths):
    p = get_preset(preset)
    return Network.create(p.arch, dataclasses.replace(p.hyper, t1=12, t2=4),
                          dataclasses.replace(p.widths, **widths), seed=seed)


def _conv_ref(x_chw, w, pad):
    """Conv (correlation, stride 1) then 2x2 sum-pool, floor mode: the core's definition."""
    ci, h, wd = x_chw.shape
    co, _, k, _ = w.shape
    xp = np.pad(x_chw, ((0, 0), (pad, pad), (pad, pad))).astype(np.int64)
    hc, wc = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    c = np.zeros((co, hc, wc), np.int64)
    for u in range(k):
        for v in range(k):
            c += np.einsum("oi,iyx->oyx", w[:, :, u, v], xp[:, u:u + hc, v:v + wc])
    hp, wp = hc // 2, wc // 2
    return c[:, :2 * hp:2, :2 * wp:2] + c[:, 1:2 * hp:2, :2 * wp:2] \
        + c[:, :2 * hp:2, 1:2 * wp:2] + c[:, 1:2 * hp:2, 1:2 * wp:2]


@pytest.mark.parametrize("arch", ["1x8x8:c4k3p1-f10", "2x9x7:c3k2-c5k3p1-f4", "1x12x12:c2k5-f3"])
def test_fused_matrix_is_conv_then_sum_pool_and_its_transpose(arch):
    net = Network.create(arch, seed=2)
    rng = np.random.default_rng(0)
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    for e in lay.edges(net):
        if e.kind != "conv":
            continue
        q = rng.integers(0, 2, size=shapes[e.layer - 1])
        m = e.matrix(net)
        got = lay.to_canonical((m @ lay.to_lava(q.ravel(), shapes[e.layer - 1]).ravel())
                               .reshape(lay.lava_shape(shapes[e.layer])), shapes[e.layer])
        want = _conv_ref(q, net.weights_q[e.layer - 1], e.geometry.pad).ravel()
        assert np.array_equal(got, want)
        # feedback = exact transpose: <M q, p> == <q, M^T p> for integer vectors
        p = rng.integers(0, 2, size=m.shape[0])
        qv = lay.to_lava(q.ravel(), shapes[e.layer - 1]).ravel()
        assert int(p @ (m @ qv)) == int((m.T @ p) @ qv)


def test_fused_kernel_definition():
    """``wf[o, i, a, b] = sum_{m, n in {0, 1}} w[o, i, a - m, b - n]`` (docs/numerics.md §4)."""
    w = np.random.default_rng(3).integers(-128, 128, size=(3, 2, 3, 3))
    wf = lay.fused_kernel(w)
    assert wf.shape == (3, 2, 4, 4)
    for a in range(4):
        for b in range(4):
            want = sum(w[:, :, a - m, b - n] for m in (0, 1) for n in (0, 1)
                       if 0 <= a - m < 3 and 0 <= b - n < 3)
            assert np.array_equal(wf[:, :, a, b], want)
    lw = lay.lava_conv_weight(wf)       # (Co, KW, KH, Ci), flipped for Lava's true convolution
    assert lw.shape == (3, 4, 4, 2) and lw[1, 0, 0, 1] == wf[1, 1, 3, 3]


def test_layout_orders_round_trip():
    rng = np.random.default_rng(1)
    for shape in [(3, 4, 5), (7,)]:
        v = rng.integers(-9, 9, size=(2, int(np.prod(shape))))
        lv = lay.to_lava(v, shape)
        assert lv.shape == (2,) + lay.lava_shape(shape)
        assert np.array_equal(lay.to_canonical(lv, shape), v)
    perm = lay.chw_of_whc((3, 4, 5))
    v = rng.integers(0, 99, size=60)
    assert np.array_equal(v[perm], lay.to_lava(v, (3, 4, 5)).ravel())


@pytest.mark.parametrize("bound", [127, 128, 508, 32767, 131068, 2 ** 24])
def test_digits_round_trip(bound):
    n = lay.n_digits(bound)
    rng = np.random.default_rng(bound)
    v = np.concatenate([rng.integers(-bound, bound + 1, size=500), [-bound, bound, 0]])
    d = lay.split_digits(v, n)
    assert all(x.min() >= lay.DIGIT_LO and x.max() <= lay.DIGIT_HI for x in d)
    assert np.array_equal(sum(x * 256 ** k for k, x in enumerate(d)), v)
    # what one Lava Dense digit computes: (sum 2d q) >> 1 or << (8k - 1)
    q = rng.integers(0, 2, size=v.size)
    acc = sum(((2 * x) @ q) << lay.digit_weight_exp(k) if lay.digit_weight_exp(k) > 0
              else ((2 * x) @ q) >> 1 for k, x in enumerate(d))
    assert acc == int(v @ q)
    assert lay.n_digits(127) == 1 and lay.n_digits(128) == 2 and lay.n_digits(508) == 2
    assert lay.n_digits(-128, 127) == 1 and lay.n_digits(-512, 508) == 2   # 8-bit fc / fused
    assert lay.n_digits(-32896, 32639) == 2 and lay.n_digits(-32897, 0) == 3


def test_max_pool_has_no_mapping():
    p = get_preset("digits")
    net = Network.create(p.arch, dataclasses.replace(p.hyper, pool="max"), p.widths, seed=0)
    with pytest.raises(MappingError, match="max"):
        lay.edges(net)


# ------------------------------------------------------------------ export
def test_export_round_trip_and_tamper(tmp_path):
    h5py = pytest.importorskip("h5py")
    from mapping.export import ExportError, export_lava, load_network
    net = _net("digits-2c", weight_bits=6)
    net.updates = 7
    path = str(tmp_path / "net.h5")
    export_lava(net, path)
    back = load_network(path)
    assert back.weights_sha256() == net.weights_sha256()
    assert (back.hyper, back.widths, back.seed, back.updates, back.weight_exp) == \
        (net.hyper, net.widths, net.seed, net.updates, net.weight_exp)
    with h5py.File(path, "r") as f:    # netx key names and layouts
        assert f["layer/0/type"][0] == b"input" and list(f["layer/0/shape"][()]) == [1, 8, 8]
        assert f["layer/1/type"][0] == b"conv" and f["layer/1/weight"].shape == (8, 1, 4, 4)
        assert list(f["layer/1/stride"][()]) == [2, 2] and f["layer/3/type"][0] == b"flatten"
        assert f["layer/4/type"][0] == b"dense" and f["layer/4/weight"].shape == (10, 64)
        assert f["layer/4/outFeatures"][()] == 10 and f["layer/4/neuron/type"][0] == b"CUBA"
        mt = f["ep/layer/2/feedback/csr_shape"][()]
        assert list(mt) == [8 * 4 * 4, 16 * 2 * 2]
    with h5py.File(path, "r+") as f:
        f["ep/layer/2/fused_kernel"][0, 0, 0, 0] += 1
    with pytest.raises(ExportError, match="fused_kernel"):
        load_network(path)
    export_lava(net, path)
    with h5py.File(path, "r+") as f:       # the netx part is checked against the network too
        f["layer/4/neuron/vThMant"][()] += 1
    with pytest.raises(ExportError, match="vThMant"):
        load_network(path)
    with pytest.raises(ExportError, match="no such file"):
        load_network(str(tmp_path / "missing.h5"))


# --------------------------------------------------------------- resources
def test_resources_small_networks_fit_one_core_per_population():
    for preset in ("digits", "digits-fc", "digits-2c"):
        net = _net(preset)
        for prof in ("loihi", "loihi2"):
            rep = check_resources(net, prof)
            assert rep.fits and rep.total_cores == net.arch.n_layers + 1
            assert all(r.binding == "population" and r.cores == 1 for r in rep.layers)
    rep = check_resources(_net("digits"), "loihi")
    l1 = rep.layers[1]    # c32k3p1 on 8x8: 32 x 4 x 4 neurons, fan-in 16 inputs + 10 feedback
    assert l1.neurons == 512 and l1.fan_in_per_core == 64 + 10
    assert l1.synapse_bits == {"forward": 16, "feedback": 8}   # fused 10-bit -> 2 digits on Loihi


def test_resources_binding_limits_and_errors():
    p = get_preset("paper-mnist")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0)
    with pytest.raises(ResourceError) as err:
        check_resources(net, "loihi")
    e = err.value
    assert (e.layer, e.limit, e.needed, e.available, e.excess) == (3, "fan_in", 6410, 4096, 2314)
    assert "fan-in" in str(e) and "2314" in str(e)
    rep = check_resources(net, "loihi", raise_on_error=False)
    assert not rep.fits and rep.total_cores is None and rep.layers[3].cores is None
    rep2 = check_resources(net, "loihi2")       # fan-in/out unpublished: unchecked
    assert rep2.fits and rep2.binding == "synaptic_memory"
    assert rep2.total_cores == sum(r.cores for r in rep2.layers)
    small = LOIHI.with_limits("tiny", neurons_per_core=100)
    rep3 = check_resources(_net("digits"), small)
    assert rep3.layers[1].binding == "compartments" and rep3.layers[1].cores == 6
    assert rep3.layers[1].neurons_per_core == 100 and rep3.layers[1].alone["compartments"] == 6
    assert rep3.lines()[0].startswith("tiny: 8 cores") and "synapse storage: mapped" in rep3.lines()[0]
    for r in rep3.layers:     # every reported load is within its limit
        assert r.neurons_per_core <= 100 and r.syn_bytes_per_core <= r.syn_bytes_limit
        assert r.fan_in_per_core <= 4096 and r.fan_out_per_core <= 4096


def test_resources_are_the_budget_fit_with_mapped_synapses():
    """One fit: check_resources == bfit.check_fit(storage='mapped'); 'fused' differs only in bits."""
    from neurochip.budget import fit as bfit
    net = _net("mnist-small")
    for prof in ("loihi", "loihi2"):
        rep = check_resources(net, prof)
        fit = bfit.check_fit(net, prof, "mapped")
        assert rep.storage == fit["storage"] == "mapped"
        assert rep.total_cores == fit["cores"] and [r.cores for r in rep.layers] == \
            [r["cores"] for r in fit["layers"]]
        # the fused kernel (10 bits) is two 8-bit digit synapses as mapped, 10 bits fused
        assert rep.layers[1].synapse_bits["forward"] == 16
        fused = bfit.check_fit(net, prof)
        assert fused["storage"] == "fused" and fused["layers"][1]["synapse_bits_in"]["fwd"] == 10
        assert fused["cores"] < fit["cores"]
        codes = {v["code"] for v in fit["violations"]}
        assert "WeightWidthExceeded" not in codes and "WeightSplit" in codes
        assert "WeightWidthExceeded" in {v["code"] for v in fused["violations"]}
    # the ResourceError is the fit's FanInExceeded violation
    p = get_preset("paper-mnist")
    big = Network.create(p.arch, p.hyper, p.widths, seed=0)
    v = next(v for v in bfit.check_fit(big, "loihi", "mapped")["violations"]
             if v["code"] == "FanInExceeded")
    assert (v["layer"], v["limit"], v["needed"], v["available"]) == (3, "fan_in", 6410, 4096)

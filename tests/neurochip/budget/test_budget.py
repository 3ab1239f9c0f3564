"""The hardware-budget report: exact counts, NeuroBench rules, core fit, memory, report I/O.

The synaptic-event checks recount, independently of the core and of
``neurochip.budget``, every spike of a recorded raster times its fan-out, the
fan-outs derived here from the plain "conv, then 2x2 pooling" description
(numerics §4), and compare with exact equality.
"""
import dataclasses
import json

import numpy as np
import pytest

from neurochip.core import K_EVENTS_FB, K_EVENTS_FWD, K_SPIKES, CoreLayout, CoreNet
from neurochip.data import load_digits
from neurochip.network import Hyper, Network, Widths, get_preset
from neurochip.budget import chips as chp
from neurochip.budget import fit as bfit
from neurochip.budget import pricing
from neurochip.budget import counts as cnt
from neurochip.budget import memory as mem
from neurochip.budget import neurobench as nb
from neurochip.budget.report import (build_report, format_table, plot_report, simulate_sample,
                                     write_report)


def _net(arch, pool="avg", t1=14, t2=5, seed=1, bits=8, batch=4):
    n = Architecture_layers(arch)
    h = Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5, t1=t1, t2=t2,
              lrs=tuple([0.1] * n), batch_size=batch, pool=pool)
    return Network.create(arch, h, Widths(weight_bits=bits), seed=seed)


def Architecture_layers(arch):
    return arch.count("-") + 1


def _inputs(net, n, seed=0):
    """Quantised pixels: digits when the shape fits, else random intensities."""
    c, h, w = net.arch.input_shape
    one = 1 << net.widths.state_bits
    if (c, h, w) == (1, 8, 8):
        ds = load_digits()
        return ds.quantised(ds.test_x[:n], net.widths.state_bits), ds.test_y[:n]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, one + 1, size=(n, c * h * w)) * (rng.random((n, c * h * w)) < 0.6)
    return x.astype(np.int64), rng.integers(0, net.arch.num_classes, n)


# ----------------------------------------------------------- independent fan-outs
def _conv_reads(hin, win, k, pad, yc, xc):
    """Input positions a plain conv output (yc, xc) reads (in bounds)."""
    return [(yc + u - pad, xc + v - pad) for u in range(k) for v in range(k)
            if 0 <= yc + u - pad < hin and 0 <= xc + v - pad < win]


def _fanouts(net):
    """Per layer l (canonical order): targets of one spike going forward (into l+1) and
    feedback (into l-1), from the conv-then-pool description, not the fused kernel."""
    arch = net.arch
    shapes = [arch.input_shape] + arch.state_shapes()
    L = arch.n_layers
    fwd = [None] * (L + 1)
    fb = [None] * (L + 1)
    for l, spec in enumerate(arch.layers, start=1):
        src = shapes[l - 1]
        n_src = int(np.prod(src))
        if spec.kind == "fc":
            fwd[l - 1] = np.full(n_src, spec.channels, np.int64)
            if l >= 2:
                fb[l] = np.full(spec.channels, n_src, np.int64)
            continue
        ci, hin, win = src
        co, hp, wp = shapes[l]
        _, hc, wc = arch.conv_shape(l - 1)
        k, pad = spec.kernel, spec.padding
        per_pos = np.zeros((hin, win), np.int64)
        if net.hyper.pool == "avg":
            # pooled (r, c) reads the union of its four conv outputs' inputs; a spike adds
            # to every pooled output of every channel that reads it
            reads = {}
            for r in range(hp):
                for c in range(wp):
                    s = set()
                    for m in (0, 1):
                        for n in (0, 1):
                            s |= set(_conv_reads(hin, win, k, pad, 2 * r + m, 2 * c + n))
                    reads[r, c] = s
                    for (y, x) in s:
                        per_pos[y, x] += 1
            fb_pos = np.array([[len(reads[r, c]) for c in range(wp)] for r in range(hp)])
        else:
            # plain-conv targets (full conv resolution incl. rows dropped by pooling)
            for yc in range(hc):
                for xc in range(wc):
                    for (y, x) in _conv_reads(hin, win, k, pad, yc, xc):
                        per_pos[y, x] += 1
            # feedback: unpool to the argmax, then the transposed conv; the number of
            # targets must not depend on the argmax for this test to be exact
            fb_pos = np.zeros((hp, wp), np.int64)
            for r in range(hp):
                for c in range(wp):
                    opts = {len(_conv_reads(hin, win, k, pad, 2 * r + m, 2 * c + n))
                            for m in (0, 1) for n in (0, 1)}
                    assert len(opts) == 1, "use padding 0 for the max-pool feedback test"
                    fb_pos[r, c] = opts.pop()
        fwd[l - 1] = np.broadcast_to(per_pos * co, (ci, hin, win)).reshape(-1).copy()
        if l >= 2:
            fb[l] = np.broadcast_to(fb_pos * ci, (co, hp, wp)).reshape(-1).copy()
    return fwd, fb


def _delivered(raster, t1, t2):
    """Spikes delivered in each phase: the free phase delivers steps 1..T1-1, +beta
    steps T1..T1+T2-1, -beta step T1 (restored with the snapshot) and its own steps."""
    steps = list(range(0, t1 - 1)), list(range(t1 - 1, t1 + t2 - 1)), \
        [t1 - 1] + list(range(t1 + t2, t1 + 2 * t2 - 1))
    return [raster[s].sum(axis=0).astype(np.int64) for s in steps]


NETS = [
    ("1x8x8:c16k3p1-f10", "avg"),                 # the digits preset's shape
    ("1x8x8:c8k3p1-c16k3p1-f10", "avg"),           # conv <- conv feedback, padding, borders
    ("1x12x12:c4k3-c6k2p1-f12-f10", "avg"),       # fused window clipped by floor pooling
    ("1x12x12:c4k3-c6k3-f10", "max"),              # max-pool, plain-conv targets
    ("1x8x8:f24-f16-f10", "avg"),                  # fc only
]


@pytest.mark.parametrize("arch,pool", NETS)
def test_synaptic_events_equal_raster_times_fanout(arch, pool):
    net = _net(arch, pool)
    x, y = _inputs(net, 3)
    res = CoreNet(net).run(x, y, train=True, record=True)
    lay = CoreLayout.build(net)
    fwd, fb = _fanouts(net)
    L = net.arch.n_layers
    for b in range(len(y)):
        phases = _delivered(res.rec_spikes[b], net.hyper.t1, net.hyper.t2)
        for p, deliv in enumerate(phases):
            per_layer = lay.split(deliv)
            for l in range(1, L + 1):
                want_fwd = int((per_layer[l - 1] * fwd[l - 1]).sum())
                assert res.counts[b, p, l, K_EVENTS_FWD] == want_fwd, (b, p, l)
                want_fb = int((per_layer[l + 1] * fb[l + 1]).sum()) if l < L else 0
                assert res.counts[b, p, l, K_EVENTS_FB] == want_fb, (b, p, l)
            assert res.counts[b, p, 0, K_EVENTS_FB] == 0
        assert res.counts[b].sum() > 0
    # the raster is the same spikes the core counted (emitted per phase)
    r = res.rec_spikes[0].astype(np.int64)
    t1, t2 = net.hyper.t1, net.hyper.t2
    for p, sl in enumerate((slice(0, t1), slice(t1, t1 + t2), slice(t1 + t2, t1 + 2 * t2))):
        parts = lay.split(r[sl].sum(axis=0))
        assert [int(v.sum()) for v in parts] == list(res.counts[0, p, :, K_SPIKES])


@pytest.mark.parametrize("arch,pool", NETS)
def test_budget_counts_agree_with_independent_fanouts(arch, pool):
    """The budget's projections and delivered-spike helper give the same numbers."""
    net = _net(arch, pool)
    x, y = _inputs(net, 1)
    res = CoreNet(net).run(x, y, train=True, record=True)
    got = cnt.delivered_spikes(res.rec_spikes[0], net.hyper.t1, net.hyper.t2)
    want = _delivered(res.rec_spikes[0], net.hyper.t1, net.hyper.t2)
    assert all(np.array_equal(got[p], want[p]) for p in range(3))
    if pool == "avg":   # the budget's position windows are the fused avg-pool targets
        fwd, fb = _fanouts(net)
        lay = CoreLayout.build(net)
        for pr in cnt.projections(net):
            col = pr.mpos.sum(axis=0) * pr.c_dst          # targets per source position
            per_neuron = np.repeat(col, pr.c_src)          # internal order
            ref = (fwd if pr.direction == "fwd" else fb)[pr.src]
            assert np.array_equal(lay.to_canonical(pr.src, per_neuron), ref)


# --------------------------------------------------------- NeuroBench, by hand
def test_neurobench_synaptic_operations_hand_case():
    """Worked by hand.

    Conv2d(1 -> 2, k=2, padding=1) on a 2x2 input, output 3x3.  Weights: channel 0
    [[1, 0], [2, 3]] (3 nonzero), channel 1 [[0, 0], [0, 4]] (1 nonzero).  Calls:
    t=1 input [[1, 0], [0, 0]], t=2 [[1, 0], [0, 1]]: 3 input spikes.  With padding 1
    every (spike, tap) pair lands inside the 3x3 output, so Effective = 3 spikes x 4
    nonzero weights = 12.  Dense per call: rows of in-bounds taps per output row are
    [1, 2, 1] (sum 4), same for columns: 16 taps x Ci 1 x Co 2 = 32; 2 calls = 64.

    Linear(3 -> 2), W = [[1, 0, 2], [0, 0, 3]]: nonzero weights per input [1, 0, 2];
    calls [1, 1, 0] and [0, 1, 1] -> counts [1, 2, 1] -> Effective 1 + 0 + 2 = 3;
    Dense 2 calls x 6 = 12.  Totals: ACs 15, Dense 76, MACs 0 (binary inputs).
    """
    wc = np.array([[[[1, 0], [2, 3]]], [[[0, 0], [0, 4]]]])
    calls = np.array([[[[1, 0], [0, 0]]], [[[1, 0], [0, 1]]]])     # (t, Ci, H, W)
    e, d = nb.conv_synops(wc, 1, calls.sum(axis=0), n_calls=2)
    assert (e, d) == (12, 64)
    wl = np.array([[1, 0, 2], [0, 0, 3]])
    e2, d2 = nb.linear_synops(wl, np.array([1, 2, 1]), n_calls=2)
    assert (e2, d2) == (3, 12)
    # NeuroBench's own procedure: binarise input and weights, re-run the layer, sum
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    wb = torch.tensor((wc != 0).astype(np.float64))
    eff = sum(float(F.conv2d(torch.tensor(c[None], dtype=torch.float64), wb, padding=1).sum())
              for c in calls)
    dense = sum(float(F.conv2d(torch.ones((1, 1, 2, 2), dtype=torch.float64),
                               torch.ones_like(wb), padding=1).sum()) for _ in calls)
    assert (eff, dense) == (12.0, 64.0)


def test_neurobench_synaptic_operations_match_per_step_rerun():
    """On a recorded raster: our count = NeuroBench's binarise-and-rerun, per step."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net = _net("1x8x8:c8k3p1-c16k3p1-f10", t1=12)
    net.weights_q[1][0, 0] = 0            # some zero weights
    net.weights_q[2][:, :5] = 0
    x, y = _inputs(net, 1)
    res = CoreNet(net).run(x, y, train=False, record=True)
    lay = CoreLayout.build(net)
    raster = res.rec_spikes[0]
    t1 = net.hyper.t1
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    eff = dense = 0.0
    for k in range(1, t1 + 1):              # call k sees the spikes emitted at step k-1
        q = lay.split(raster[k - 2].astype(np.float64)) if k >= 2 else \
            [np.zeros(int(np.prod(s))) for s in shapes]
        for l, spec in enumerate(net.arch.layers, start=1):
            w = torch.tensor(net.weights_q[l - 1].astype(np.float64))
            inp = torch.tensor(q[l - 1].reshape((1,) + tuple(shapes[l - 1])))
            if spec.kind == "conv":
                eff += float(F.conv2d((inp != 0).double(), (w != 0).double(),
                                      padding=spec.padding).sum())
                dense += float(F.conv2d(torch.ones_like(inp), torch.ones_like(w),
                                        padding=spec.padding).sum())
            else:
                eff += float(F.linear((inp.reshape(1, -1) != 0).double(), (w != 0).double()).sum())
                dense += float(w.numel())
    deliv = cnt.delivered_spikes(raster, t1, net.hyper.t2)
    got = nb.synaptic_operations(net, nb.split_canonical(net, deliv[0]), t1)
    assert got == {"Effective_MACs": 0.0, "Effective_ACs": eff, "Dense": dense}


def test_neurobench_static_and_workload_rules():
    net = _net("1x8x8:c8k3p1-f10")
    for w in net.weights_q:
        w[w == 0] = 1                     # no zeros from the quantised initialisation
    net.weights_q[0][:2] = 0
    n_w = 8 * 9 + 10 * 128
    assert nb.parameter_count(net) == n_w + 8 + 10
    assert nb.footprint(net) == 4 * (n_w + 18)
    assert nb.connection_sparsity(net) == round(2 * 9 / n_w, 4)
    x, y = _inputs(net, 1)
    res = CoreNet(net).run(x, y, train=False)
    c = res.counts[0, 0]
    first = nb.first_step_changes(net)
    wl, notes = nb.workload_metrics(net, c, 1.0, first, None)
    n_hidden = 8 * 4 * 4 + 10
    assert wl["ActivationSparsity"] == 1 - c[1:, K_SPIKES].sum() / (n_hidden * net.hyper.t1)
    # every neuron at the first step, then the (neuron, step) pairs that changed
    assert wl["MembraneUpdates"] == c[1:, 4].sum() - first + n_hidden
    assert "SynapticOperations" not in wl and "SynapticOperations" in notes


# -------------------------------------------------------------------- core fit
def test_fit_fc_by_hand():
    """1x63x64:f300-f10 on Loihi, worked by hand.

    Layer 1: 300 neurons, each 4032 forward + 10 feedback synapses x 8 bits = 32,336
    bits; 1,048,576 // 32,336 = 32 per core -> ceil(300/32) = 10 cores (synaptic memory);
    fan-in 4,042 <= 4,096.  Input: 4,032 encoders, each reaching all 10 cores of layer 1:
    4,096 // 10 = 409 per core -> ceil(4032/409) = 10 cores (output axons).  Output: 10
    neurons, 1 core.  Total 21 cores, 1 chip.
    """
    net = _net("1x63x64:f300-f10")
    fit = bfit.check_fit(net, "loihi")
    cores = [r["cores"] for r in fit["layers"]]
    assert cores == [10, 10, 1] and fit["cores"] == 21 and fit["chips"] == 1
    assert fit["layers"][1]["binding"] == "synapse_memory"
    assert fit["layers"][0]["binding"] == "fan_out"
    assert fit["layers"][1]["max_per_core"]["synapse_bits"] == 32 * 32336
    assert not [v for v in fit["violations"] if v["code"] == "FanInExceeded"]
    bad = bfit.check_fit(_net("1x64x65:f10"), "loihi")
    assert any(v["code"] == "FanInExceeded" and v["layer"] == 1 for v in bad["violations"])
    assert bad["layers"][1]["infeasible"] == ["fan_in"]
    l2 = bfit.check_fit(net, "loihi2")
    assert l2["unchecked"] == ["fan_in", "fan_out"]
    assert fit["storage"] == l2["storage"] == "fused"
    assert fit["layers"][2]["binding"] == "population"      # 10 neurons on one core
    assert fit["layers"][1]["synapse_bits_in"] == {"fwd": 8, "fb": 8}


def test_fit_synapse_storage_model():
    """The storage model sets the stored bits only; too-wide synapses stored split are a note."""
    net = _net("1x12x12:c4k3-f10")          # fused avg-pool kernel: 10 bits > Loihi's 9
    fused = bfit.check_fit(net, "loihi")
    assert fused["layers"][1]["synapse_bits_in"]["fwd"] == 10
    assert [v["severity"] for v in fused["violations"] if v["code"] == "WeightWidthExceeded"] \
        == ["violation"]
    split = bfit.SynapseStorage("split16", "16 bits when wider than the format",
                               lambda need, fmt: 16 if fmt is not None and need > fmt else need)
    fit = bfit.check_fit(net, "loihi", split)
    assert fit["storage"] == "split16" and fit["layers"][1]["synapse_bits_in"]["fwd"] == 16
    assert fit["layers"][2]["synapse_bits_in"] == {"fwd": 8}
    assert not [v for v in fit["violations"] if v["code"] == "WeightWidthExceeded"]
    assert [v["severity"] for v in fit["violations"] if v["code"] == "WeightSplit"] == ["note"]
    # memory of layer 1 scales with the stored width (forward 16 bits + feedback 8 bits)
    r = fit["layers"][1]
    small = bfit.check_fit(net, chp.LOIHI.with_limits(synapse_bits_per_core=4000), split)
    assert small["layers"][1]["max_per_core"]["synapse_bits"] <= 4000
    assert small["layers"][1]["cores"] > r["cores"]
    assert small["limits"]["synapse_bits_per_core"]["grade"] == "D"


@pytest.mark.parametrize("arch", ["1x8x8:c8k3p1-c16k3p1-f10", "1x12x12:c4k3-c6k2p1-f12-f10"])
@pytest.mark.parametrize("chip", ["loihi", "loihi2"])
@pytest.mark.parametrize("storage", ["fused", "double"])
def test_fit_loads_brute_force(arch, chip, storage):
    """Per-core loads of the chosen split, recounted from neuron-level connectivity."""
    net = _net(arch)
    prof = chp.CHIPS[chip]
    # shrink the chip so that the small net needs several cores per layer
    if prof.synapse_bits_per_core is not None:
        prof = prof.with_limits(neurons_per_core=40, synapse_bits_per_core=6000, fan_in_axons=150,
                                fan_out_axons=300)
    else:
        prof = prof.with_limits(neurons_per_core=40, memory_bits_per_core=12000)
    stored = (lambda need: need) if storage == "fused" else (lambda need: 2 * need)
    if storage == "double":       # any storage model: stored bits per synapse, the rest the same
        storage = bfit.SynapseStorage("double", "twice the needed bits", lambda need, fmt: 2 * need)
    fit = bfit.check_fit(net, prof, storage)
    lay = CoreLayout.build(net)
    sizes = lay.sizes
    L = net.arch.n_layers
    # neuron-level connectivity from the independent fan-out description (avg pool)
    fwd, fb = _fanouts(net)
    conn = {}   # (src layer, dst layer) -> bool matrix (dst internal, src internal)
    for pr in cnt.projections(net):
        m = np.kron(pr.mpos, np.ones((pr.c_dst, pr.c_src), bool))
        ref = (fwd if pr.direction == "fwd" else fb)[pr.src]
        assert np.array_equal(lay.to_canonical(pr.src, m.sum(axis=0)), ref)
        conn[pr.src, pr.dst] = (m, stored(pr.weight_bits))
    starts = fit["_starts"]
    core_of = {l: np.searchsorted(starts[l], np.arange(sizes[l]), side="right") - 1
               for l in range(L + 1)}
    state = {l: sum(cnt.neuron_state_bits(net, l).values()) for l in range(L + 1)}
    for l in range(L + 1):
        st = starts[l]
        row = fit["layers"][l]["max_per_core"]
        mx = {"neurons": 0, "mem": 0, "in": 0, "out": 0}
        for k in range(len(st) - 1):
            nid = np.arange(st[k], st[k + 1])
            mx["neurons"] = max(mx["neurons"], len(nid))
            bits, pres, outs = 0, 0, 0
            for (s, d), (m, wbits) in conn.items():
                if d == l:
                    bits += int(m[nid].sum()) * wbits
                    pres += int(m[nid].any(axis=0).sum())
                if s == l:
                    for n in nid:
                        outs += len(set(core_of[d][m[:, n]]))
            if prof.memory_bits_per_core is not None:
                bits += len(nid) * state[l]
            mx["mem"] = max(mx["mem"], bits)
            mx["in"] = max(mx["in"], pres)
            mx["out"] = max(mx["out"], outs)
        mem_key = "memory_bits" if prof.memory_bits_per_core is not None else "synapse_bits"
        assert (row["neurons"], row[mem_key], row["input_axons"], row["output_axons"]) == \
            (mx["neurons"], mx["mem"], mx["in"], mx["out"]), l
        assert mx["neurons"] <= 40
        if chip == "loihi":
            assert mx["mem"] <= 6000 and mx["in"] <= 150 and mx["out"] <= 300
        else:
            assert mx["mem"] <= 12000


# -------------------------------------------------------------------- memory
def test_memory_by_hand():
    """1x8x8:f64-f10, B = 2, T_bptt = 5, k = 3, widths 8/12/8/16.

    EP live state bits per neuron: hidden s 13 + dec 24 + psi 24 + enc_prev 13 + spike 1
    = 75; input x 13 + psi 24 + enc_prev 13 + spike 1 = 51.  Snapshot: hidden 75, input
    24 + 13 + 1 = 38.  Traces 16 per neuron.  Accumulators: layer 1 2 x 24, output 24.
    """
    net = _net("1x8x8:f64-f10", batch=2)
    m = mem.training_memory(net, batch=2, t_bptt=5, k_bptt=3)
    ep = m["breakdown"]["ep"]
    assert ep["live_state"] == -(-2 * (74 * 75 + 64 * 51) // 8)
    assert ep["snapshot"] == -(-2 * (74 * 75 + 64 * 38) // 8)
    assert ep["traces"] == 2 * 138 * 16 // 8
    assert ep["input_accumulators"] == 2 * (64 * 48 + 10 * 24) // 8
    assert ep["weights_biases"] == (64 * 64 + 10 * 64) + (74 * 16) // 8
    bp = m["breakdown"]["bptt"]
    assert bp["graph"] == -(-(2 * 5 * 74 * (1 + 13 + 24) + 2 * 5 * 64) // 8)
    assert m["bptt_bytes"] == bp["graph"] + 2 * ep["weights_biases"]
    assert m["breakdown"]["bptt_fp32"]["graph"] == 2 * 5 * (74 * 3 + 64) * 4
    assert all(isinstance(a, str) for a in m["assumptions"]) and len(m["assumptions"]) >= 8
    # EP memory does not depend on T1/T2, BPTT grows with T
    net2 = dataclasses.replace(net, hyper=dataclasses.replace(net.hyper, t1=99, t2=33))
    assert mem.training_memory(net2, batch=2, t_bptt=5)["ep_bytes"] == m["ep_bytes"]
    assert mem.training_memory(net, batch=2, t_bptt=10)["bptt_bytes"] > m["bptt_bytes"]


# -------------------------------------------------------------------- pricing
def test_prices_never_silent_zero():
    work = {"synaptic_op": {"count": 10.0, "by": {"conv": 4.0, "dense": 6.0}},
            "neuron_update": {"count": 5.0, "by": {"active": 2.0, "idle": 3.0}},
            "spike_message": {"count": None, "why": "no raster"},
            "learning_product": {"count": 7.0}, "spikes_out": {"count": 1.0}}
    d18 = pricing.price_workload(chp.LOIHI.energy, work)
    assert d18["terms"]["synaptic_op"]["energy_J"] == pytest.approx(10 * 23.6e-12)
    assert d18["terms"]["neuron_update"]["energy_J"] == pytest.approx(2 * 81e-12 + 3 * 52e-12)
    assert d18["terms"]["learning_product"]["energy_J"] is None
    assert "learning_product" in d18["unpriced"] and "spike_message" in d18["uncounted"]
    assert d18["terms"]["spikes_out"]["status"] == "included" and not d18["complete"]
    l2 = pricing.price_workload(chp.LOIHI2.energy, work)
    assert l2["total_J"] is None and all(t["energy_J"] is None for t in l2["terms"].values())
    sana = pricing.price_workload(chp.LOIHI.alt_energy["sana-fe"], work)
    assert sana["terms"]["synaptic_op"]["energy_J"] == pytest.approx(4 * 24e-12 + 6 * 35.5e-12)
    for ref in list(chp.LOIHI.energy.values()) + [chp.LOIHI.static_power_per_chip]:
        for r in (ref.values() if isinstance(ref, dict) else [ref]):
            assert r.source and r.grade in "CPSDU-"


# -------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def digits_report():
    p = get_preset("digits")
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=16, t2=6), p.widths, seed=0,
                         preset="digits")
    x, y = _inputs(net, 1)
    counts, raster, tally = simulate_sample(net, x[0], int(y[0]))
    return net, counts, raster, tally, build_report(net, tally, counts, raster)


def test_report_keys_and_consistency(digits_report, tmp_path):
    net, counts, raster, tally, rep = digits_report
    for chip in ("loihi", "loihi2"):
        assert rep["chips"][chip]["cores"] >= net.arch.n_layers + 1
        assert rep["chips"][chip]["binding_limit"]
        assert rep["chips"][chip]["storage"] == "fused"
    assert "synapses fused" in format_table(rep, short=True)
    se = rep["per_sample"]["synaptic_events"]
    ev = counts[..., K_EVENTS_FWD] + counts[..., K_EVENTS_FB]
    assert [se["free"], se["plus"], se["minus"], se["total"]] == \
        [int(ev[0].sum()), int(ev[1].sum()), int(ev[2].sum()), int(ev.sum())]
    assert rep["memory"]["ep_bytes"] > 0 and rep["memory"]["bptt_bytes"] > 0
    assert rep["memory"]["assumptions"]
    nbm = rep["neurobench"]
    assert set(nbm) >= {"Footprint", "ConnectionSparsity", "ActivationSparsity",
                        "SynapticOperations", "MembraneUpdates"}
    assert set(nbm["SynapticOperations"]) == {"Effective_MACs", "Effective_ACs", "Dense"}
    e = rep["chips"]["loihi"]["per_training_sample"]["energy"]
    assert e["terms"]["synaptic_op"]["count"] == se["total"]
    assert "learning_product" in e["unpriced"]
    j = tmp_path / "r.json"
    write_report(rep, str(j))
    back = json.loads(j.read_text())
    assert back["chips"]["loihi2"]["cores"] == rep["chips"]["loihi2"]["cores"]
    md = tmp_path / "r.md"
    write_report(rep, str(md))
    assert "EP vs BPTT" in md.read_text()
    with pytest.raises(ValueError):
        write_report(rep, str(tmp_path / "r.txt"))
    short = format_table(rep, short=True)
    assert "Loihi" in short and "BPTT" in short and len(short.splitlines()) <= 12
    assert "NeuroBench" in format_table(rep, short=False)
    png = tmp_path / "f.png"
    plot_report(rep, str(png))
    assert png.stat().st_size > 10000


def test_report_from_tally_only(digits_report):
    """A run's tally without a raster: averages, and the raster-only terms are named, not 0."""
    from neurochip.trainer import Tally, make_backend, train_step, evaluate
    net, *_ = digits_report
    net = net.copy()
    x, y = _inputs(net, 4)
    tally = Tally.zeros(net.arch.n_layers)
    be = make_backend(net)
    train_step(be, net, x[:2], y[:2], tally)
    evaluate(be, net, x[2:], y[2:], tally=tally)
    rep = build_report(net, tally)
    assert "SynapticOperations" in rep["neurobench_not_computed"]
    assert "SynapticOperations" not in rep["neurobench"]
    ev = tally.counts[..., K_EVENTS_FWD] + tally.counts[..., K_EVENTS_FB]
    assert rep["per_sample"]["synaptic_events"]["plus"] == pytest.approx(ev[1].sum() / 2)
    assert rep["per_inference"]["synaptic_events"]["free"] == pytest.approx(ev[0].sum() / 4)
    terms = rep["chips"]["loihi"]["per_inference"]["energy"]["terms"]
    assert terms["spike_message"]["count"] is None and terms["spike_message"]["energy_J"] is None
    assert "spike_message" in rep["chips"]["loihi"]["per_inference"]["energy"]["uncounted"]
    assert format_table(rep)


def test_report_without_counts(tmp_path):
    """Nothing simulated: static counts, fit and memory; workload metrics named, not 0."""
    from neurochip.trainer import Tally
    net = _net("1x8x8:c8k3p1-f10")
    rep = build_report(net, Tally.zeros(net.arch.n_layers))
    assert rep["per_sample"] is None and rep["per_inference"] is None
    assert "ActivationSparsity" in rep["neurobench_not_computed"]
    assert rep["chips"]["loihi"]["cores"] >= 3 and "per_inference" not in rep["chips"]["loihi"]
    assert format_table(rep) and format_table(rep, short=False)
    write_report(rep, str(tmp_path / "e.md"))
    plot_report(rep, str(tmp_path / "e.png"))


def test_cli_json(tmp_path, capsys):
    from neurochip.budget.__main__ import main
    out = tmp_path / "b.json"
    assert main(["--preset", "digits", "--bits", "6", "--t1", "10", "--t2", "4",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["network"]["widths"]["weight_bits"] == 6
    assert "shortened" in rep["note"]
    for key in ("loihi", "loihi2"):
        assert isinstance(rep["chips"][key]["cores"], int)
    assert set(rep["per_sample"]["synaptic_events"]) == {"free", "plus", "minus", "total"}
    assert main(["--preset", "digits", "--chips", "nope"]) == 2
    assert "hardware budget" in capsys.readouterr().out


def test_cli_checkpoint(tmp_path):
    """A saved network is reported on without being trained (its weights stay as saved)."""
    from neurochip.budget.__main__ import main
    from neurochip.checkpoint import load_checkpoint, save_checkpoint
    p = get_preset("digits")
    net = Network.create(p.arch, dataclasses.replace(p.hyper, t1=12, t2=4), p.widths, seed=2,
                         preset="digits")
    ck = tmp_path / "net.npz"
    save_checkpoint(str(ck), net)
    out = tmp_path / "c.json"
    assert main([str(ck), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["network"]["weights_sha256"] == net.weights_sha256()
    assert load_checkpoint(str(ck))[0].weights_sha256() == net.weights_sha256()
    assert main([str(ck), "--bits", "4"]) == 2

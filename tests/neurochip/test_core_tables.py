"""The speed work keeps every integer: narrow tables, regrouped contrastive sums, the benchmark.

No test here asserts a wall-clock time (the machines are shared); the
benchmark is only run as a smoke test of its outputs.
"""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neurochip import learning
from neurochip.core import CoreLayout, CoreNet
from neurochip.core.meta import M_WB_OFF, M_WF_OFF
from neurochip.data import load_digits
from neurochip.network import Hyper, Network, Widths, get_preset

from tests.paths import ROOT  # noqa: E402


def _digits(n, start=0):
    ds = load_digits()
    return ds.quantised(ds.train_x[start:start + n], 12), ds.train_y[start:start + n]


@pytest.mark.parametrize("preset,pool,bits", [("digits", "avg", 8), ("digits-2c", "avg", 14),
                                              ("digits-2c", "max", 16), ("digits-fc", "avg", 8)])
def test_narrow_tables_give_the_wide_integers(preset, pool, bits):
    """int16 weight tables / int32 accumulators (chosen from static bounds) == int32 / int64."""
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, pool=pool),
                         dataclasses.replace(p.widths, weight_bits=bits), seed=4)
    x, y = _digits(6)
    narrow = CoreNet(net)
    wide = CoreNet(net)
    wide.layout.w_dtype, wide.layout.fc_dtype, wide.layout.acc_dtype = np.int32, np.int32, np.int64
    wide.refresh()
    assert wide.w_fwd.dtype == np.int32 and wide.w_fc_fwd.dtype == np.int32
    assert narrow.w_fc_fwd.dtype == (np.int8 if bits <= 8 else np.int16)
    a = narrow.run(x, y, train=True, record=True)
    b = wide.run(x, y, train=True, record=True)
    for f in ("traces", "pool_idx", "s_free", "counts", "rec_spikes", "rec_state"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_table_dtypes_follow_the_bounds():
    def lay(arch, bits, pool="avg"):
        n = len(arch.split(":")[1].split("-"))
        net = Network.create(arch, Hyper(lrs=(0.1,) * n, pool=pool), Widths(weight_bits=bits))
        return CoreLayout.build(net)
    small = lay("1x8x8:c8k3p1-f10", 8)
    assert (small.w_dtype, small.fc_dtype, small.acc_dtype) == (np.int16, np.int8, np.int32)
    # fc tables hold plain weights: int8 up to 8 bits, then int16
    assert lay("1x8x8:c8k3p1-f10", 9).fc_dtype == np.int16
    assert lay("1x8x8:c8k3p1-f10", 16).fc_dtype == np.int16
    # a fused avg-pool entry is a sum of four 15-bit weights: no longer an int16
    assert lay("1x8x8:c8k3p1-f10", 15).w_dtype == np.int32
    assert lay("1x8x8:c8k3p1-f10", 16, "max").w_dtype == np.int16
    # 65536 inputs of 16-bit weights can reach 2**31: int64 accumulators
    assert lay("1x256x256:f4-f2", 16).acc_dtype == np.int64
    assert lay("1x256x256:f4-f2", 15).acc_dtype == np.int32


@pytest.mark.parametrize("bits", [8, 12])
def test_fc_tables_are_the_weights_in_channel_last_input_order(bits):
    """Oracle for the fc tables (tiled packing): feedback ``[o, i] = W[o, canonical(i)]``,
    forward its transpose, where internal input ``i`` of a conv map is ``(y, x, c)``
    channel-last and canonical is ``(c, y, x)``; sizes off the 64-entry tiles."""
    arch = "1x12x12:c4k3-c20k3p1-f70-f10"        # fc1: 20 x 2 x 2 = 80 inputs, 70 outputs
    net = Network.create(arch, Hyper(lrs=(0.1,) * 4), Widths(weight_bits=bits), seed=3)
    core = CoreNet(net)
    meta = core.layout.meta
    c, h, w = 20, 2, 2
    canonical = [ch * h * w + y * w + x for y in range(h) for x in range(w) for ch in range(c)]
    for l, cols in ((3, canonical), (4, list(range(70)))):
        wq = net.weights_q[l - 1]
        n_out, n_in = wq.shape
        f0, b0 = int(meta[l, M_WF_OFF]), int(meta[l, M_WB_OFF])
        fb = core.w_fc_fb[b0:b0 + n_out * n_in].reshape(n_out, n_in)
        fwd = core.w_fc_fwd[f0:f0 + n_in * n_out].reshape(n_in, n_out)
        assert np.array_equal(fb, wq[:, cols])
        assert np.array_equal(fwd, wq[:, cols].T)


def _contrastive_by_definition(pre, post, kernel, padding, conv_hw):
    """docs/numerics.md §6.5, written out: upsample / unpool the post, correlate with the pre."""
    hc, wc = conv_hw
    total = None
    for sign, pre_t, post_t, idx in ((1, pre.plus, post.plus, post.idx_plus),
                                     (-1, pre.minus, post.minus, post.idx_minus)):
        bsz, co, h, w = post_t.shape
        g = np.zeros((bsz, co, hc, wc), np.int64)
        for m in (0, 1):
            for n in (0, 1):
                blk = post_t if idx is None else np.where(idx == 2 * m + n, post_t, 0)
                g[:, :, m:2 * h:2, n:2 * w:2] = blk
        pp = np.pad(pre_t, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        part = np.zeros((co, pre_t.shape[1], kernel, kernel), np.int64)
        for u in range(kernel):
            for v in range(kernel):
                win = pp[:, :, u:u + hc, v:v + wc]
                part[:, :, u, v] = np.einsum("boyx,biyx->oi", g, win)
        total = sign * part if total is None else total + sign * part
    return total


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("shape", [(2, 3, 9, 9, 4, 3, 1), (3, 2, 8, 7, 5, 2, 0),
                                   (1, 1, 12, 12, 3, 5, 2)])
def test_regrouped_contrastive_sum_equals_the_definition(pool, shape):
    bsz, ci, hin, win, co, k, pad = shape
    hc, wc = hin + 2 * pad - k + 1, win + 2 * pad - k + 1
    h, w = hc // 2, wc // 2
    rng = np.random.default_rng(sum(shape))

    def traces(c, hh, ww):
        t = rng.integers(0, 256, (bsz, c, hh, ww)).astype(np.int64)
        t[rng.random(t.shape) < 0.4] = 0
        return t
    pre = learning.LayerTraces(traces(ci, hin, win), traces(ci, hin, win))
    post = learning.LayerTraces(traces(co, h, w), traces(co, h, w))
    if pool == "max":
        post.idx_plus = rng.integers(0, 4, post.plus.shape).astype(np.int8)
        post.idx_minus = rng.integers(0, 4, post.plus.shape).astype(np.int8)
    g, gb = learning.contrastive_conv(pre, post, k, pad, (hc, wc), 255)
    assert g.dtype == np.int64
    assert np.array_equal(g, _contrastive_by_definition(pre, post, k, pad, (hc, wc)))
    assert np.array_equal(gb, (post.plus - post.minus).sum(axis=(0, 2, 3)))


def test_benchmark_smoke(tmp_path):
    """``benchmarks/speed.py`` runs and writes its figures (no timing is asserted)."""
    out = tmp_path / "speed.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"),
                        "--preset", "digits", "--quick", "--sections", "134", "--no-torch",
                        "--intensities", "0.5", "1", "--thetas", "1", "--t1s", "10", "20",
                        "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600,
                       # section 4 compares 1 and 2 Numba threads: not under the suite's NUMBA_NUM_THREADS=1
                       env={k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"})
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["network"]["preset"] == "digits" and data["samples"]["batch"] == 20
    assert data["threads_speedup"] > 0 and "threads_speedup_train_step" in data
    rows = data["spike_scaling"]["rows"]
    assert len(rows) == 5 and all(row["events_per_sample"] > 0 for row in rows)
    # more free-phase steps, more events (the counts are exact integers, not timings)
    t1 = {row["value"]: row["events_per_sample"] for row in rows if row["kind"] == "t1"}
    assert t1[20] > t1[10]
    assert data["core_vs_torch"]["core_train"]["events_per_sample"] > 0

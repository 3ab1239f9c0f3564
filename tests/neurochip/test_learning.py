"""neurochip.learning: saturations of the update are counted exactly, never wrapped."""
from __future__ import annotations

import numpy as np

from neurochip import learning
from neurochip import numerics as nx
from neurochip.core import CoreNet
from neurochip.kinds import K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI
from neurochip.debug import DebugBackend, check_parameters
from neurochip.trainer import Tally, make_backend, train_step
from tests.helpers import digits_inputs as _digits, saturating_network as _saturating_network


def test_saturations_are_counted_never_wrapped():
    net = _saturating_network()
    x, y = _digits(40, sbits=16)
    res = CoreNet(net).run(x[:20], y[:20], train=True)
    assert res.counts[..., K_SAT_INPUT].sum() > 0
    # decoder and encoder residue cannot saturate (see the property tests below)
    assert res.counts[..., K_SAT_DEC].sum() == 0 and res.counts[..., K_SAT_PSI].sum() == 0
    be = DebugBackend(make_backend(net), net)     # registers checked after every batch/update
    tally = Tally.zeros(net.arch.n_layers)
    for i in range(2):
        train_step(be, net, x[20 * i:20 * (i + 1)], y[20 * i:20 * (i + 1)], tally)
    sat = tally.saturations()
    assert sat["input_alignment"] > 0 and sat["weights"] > 0, sat
    assert tally.total_saturations() == sum(sat.values())
    check_parameters(net)
    assert be.batches_checked == 2 and be.updates_checked == 2

def test_update_saturation_count_is_exact():
    """Hand-made contrastive sums push every edge weight outward by a known amount."""
    net = _saturating_network()
    lo, hi = nx.signed_range.py_func(4)
    net.weights_q[1][...] = np.where(np.arange(net.weights_q[1].size) % 3 == 0, lo, hi).reshape(
        net.weights_q[1].shape)
    before = [w.copy() for w in net.weights_q]
    grads = []
    for w, b in zip(net.weights_q, net.biases_q):
        g = np.where(w == hi, 1 << 40, np.where(w == lo, -(1 << 40), 0)).astype(np.int64)
        g.reshape(-1)[:3] = 0                          # three weights stay put
        grads.append((g, np.zeros(b.shape, np.int64)))
    stats = learning.update_network(net, grads)
    for l, (w0, w1) in enumerate(zip(before, net.weights_q)):
        assert stats.weight_saturations[l] == w0.size - 3
        assert stats.weight_writes[l] == 0               # saturated at the edge: unchanged
        assert np.array_equal(w0, w1) and w1.min() >= lo and w1.max() <= hi
    # the other direction: every weight moves, none saturates
    # (delta = G * M / 2**K: a G of 2 * 2**K / M moves a weight inward by about 2)
    unit = [max(1, round(2 * 2 ** lc.lr_w[1] / lc.lr_w[0])) for lc in net.constants().layers]
    grads = [(-np.sign(g).astype(np.int64) * u, gb) for (g, gb), u in zip(grads, unit)]
    stats = learning.update_network(net, grads)
    assert stats.weight_saturations.sum() == 0 and stats.weight_writes.sum() > 0

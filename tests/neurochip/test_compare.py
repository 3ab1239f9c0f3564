"""neurochip.compare: the one comparison every checker uses."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from neurochip.backend import NumbaBackend
from neurochip.compare import DiffTally, count_differing, diff_batches, n_differ, prediction_lines
from neurochip.data import load_digits
from neurochip.network import Network, get_preset


def test_count_differing_rules():
    a = np.arange(6).reshape(2, 3)
    b = a.copy()
    b[1, 2] = 9
    assert count_differing(a, a) == (0, 6) and count_differing(a, b) == (1, 6)
    assert count_differing(a, a.ravel()) == (6, 6)          # a shape mismatch: all differ
    assert count_differing(None, a) == (6, 6) and count_differing(None, None) == (0, 0)
    assert n_differ(a, b) == 1
    t = DiffTally()
    t.add((1, 0, "s"), a, b)
    t.add((2, 0, "s"), a, a)
    t.add(("all", "x"), 3, 4)
    assert (t.differing(), t.compared(), t.column("s")) == (2, 13, (1, 12))


@pytest.fixture(scope="module")
def recorded():
    p = get_preset("digits-2c")
    hyper = dataclasses.replace(p.hyper, t1=8, t2=3, pool="max", lrs=(0.1, 0.1, 0.05))
    net = Network.create(p.arch, hyper, p.widths, seed=5)
    ds = load_digits()
    be = NumbaBackend(net)
    res = be.run(ds.quantised(ds.test_x[:3], net.widths.state_bits), ds.test_y[:3], train=True,
                 record=True)
    return net, be, res


def test_identical_results_compare_every_integer(recorded):
    net, be, res = recorded
    t = DiffTally()
    diff_batches(t, net, be.core.layout, res, copy.deepcopy(res), True, be.core.pool_offs)
    n_all = be.core.layout.n_all
    n_max = sum(be.core.layout.sizes[l] for l in (1, 2))          # the two max-pooled conv layers
    want = (res.rec_spikes.size + res.rec_state.size + res.traces.size + res.counts.size
            + 3 * 2 * n_max + res.s_free.size + res.predictions.size)
    assert t.differing() == 0 and t.compared() == want and res.rec_spikes.shape[-1] == n_all


@pytest.mark.parametrize("field,index,column", [
    ("rec_spikes", (1, 9, 70), "spikes"), ("rec_state", (0, 2, 1, 70), "dec"),
    ("traces", (2, 1, 70), "trace"), ("counts", (0, 1, 2, 3), "counts"),
    ("pool_idx", (0, 0, 5), "argmax"), ("s_free", (1, 4), "s_free")])
def test_one_changed_integer_is_found_where_it_is(recorded, field, index, column):
    net, be, res = recorded
    other = copy.deepcopy(res)
    getattr(other, field)[index] += 1
    t = DiffTally()
    diff_batches(t, net, be.core.layout, res, other, True, be.core.pool_offs)
    assert t.differing() == 1
    assert [k for k, v in t.diff.items() if v] [0][-1] == column


def test_prediction_lines_counts_errors_agreement_and_silent_images():
    counts = np.array([[0, 3, 1], [2, 2, 0], [0, 0, 0], [1, 0, 4]])   # first max: 1, 0, 0, 2
    core = np.array([1, 1, 0, 2])
    labels = np.array([1, 0, 2, 2])
    core_line, approx_line, same_line = prediction_lines("approx", counts, core, labels)
    assert core_line.startswith("  core (exact EP network, free phase):")
    assert core_line.endswith("test error 50.00 %")                 # core wrong on images 1, 2
    assert approx_line.startswith("  approx:") and "test error 25.00 %" in approx_line
    assert approx_line.endswith("(argmax of output spike counts; 1 images without an output spike)")
    assert same_line == "  same prediction: 75.00 % of the images"
    # both labels end at the same column, whichever name is longer
    long_name = prediction_lines("x" * 60, counts, core, labels)
    assert long_name[0].index("test error") == long_name[1].index("test error")
    assert core_line.index("test error") == approx_line.index("test error")

"""neurochip.ensemble: members' output states summed, the first maximum predicted."""
from __future__ import annotations

import numpy as np
import pytest

import neurochip as nc
from neurochip import ensemble, trainer
from neurochip.backend import make_backend


@pytest.fixture(scope="module")
def trained():
    data = nc.load_dataset("digits").subset(120, 50)
    nets = []
    for seed in (1, 2):
        net = nc.Network.from_preset("digits", t1=6, t2=2, batch_size=10, seed=seed)
        nc.train(net, data, epochs=1)
        nets.append(net)
    return data, nets


def test_predict_sums_the_states_and_takes_the_first_maximum():
    a = np.array([[5, 1, 0], [2, 2, 0], [0, 0, 0]], np.int64)
    b = np.array([[0, 3, 0], [1, 1, 4], [0, 0, 0]], np.int64)
    # sums: [5, 4, 0] -> 0; [3, 3, 4] -> 2; [0, 0, 0] -> 0 (a tie: the first)
    np.testing.assert_array_equal(ensemble.predict([a, b]), [0, 2, 0])
    np.testing.assert_array_equal(ensemble.predict([b]), [1, 2, 0])
    np.testing.assert_array_equal(ensemble.predict([np.array([[1, 4, 4]])]), [1])   # first of equal maxima
    assert ensemble.predict([a]).dtype == np.int64


def test_output_states_are_the_free_phase_states_batch_by_batch(trained):
    data, nets = trained
    net = nets[0]
    s_free, preds = nc.output_states(net, data, batch_size=7)
    assert s_free.shape == (50, 10) and s_free.dtype == np.int64 and preds.dtype == np.int64
    res = make_backend(net).run(data.quantised(data.test_x, net.widths.state_bits), train=False)
    np.testing.assert_array_equal(s_free, res.s_free)
    np.testing.assert_array_equal(preds, res.predictions)
    # the core's prediction is the first maximum of the output state (docs/numerics.md)
    first_max = np.array([int(np.flatnonzero(row == row.max())[0]) for row in s_free])
    np.testing.assert_array_equal(preds, first_max)
    empty, none = trainer.output_states(make_backend(net), net, np.zeros((0, 64), np.int64))
    assert empty.shape == (0, 10) and none.shape == (0,)


def test_one_member_is_the_network_itself(trained):
    data, nets = trained
    alone, ens = nc.evaluate(nets[0], data), nc.evaluate_ensemble(nets[:1], data)
    assert ens.ensemble.error == alone.error and ens.ensemble.loss == pytest.approx(alone.loss, abs=1e-12)
    np.testing.assert_array_equal(ens.ensemble.confusion, alone.confusion)
    assert len(ens.members) == 1 and ens.members[0].error == alone.error


def test_two_members_against_their_states_summed_by_hand(trained):
    data, nets = trained
    ens = nc.evaluate_ensemble(nets, data)
    s = [nc.output_states(net, data)[0] for net in nets]
    wrong = 0
    for i, label in enumerate(data.test_y):
        total = [int(s[0][i, c]) + int(s[1][i, c]) for c in range(10)]
        wrong += total.index(max(total)) != label
    assert ens.ensemble.error == wrong / len(data.test_y)
    assert ens.ensemble.confusion.sum() == len(data.test_y)
    assert [m.error for m in ens.members] == [nc.evaluate(net, data).error for net in nets]
    reverse = nc.evaluate_ensemble(nets[::-1], data)
    assert reverse.ensemble.error == ens.ensemble.error and reverse.ensemble.loss == pytest.approx(ens.ensemble.loss)


def test_members_that_cannot_be_summed_are_refused(trained):
    data, nets = trained
    with pytest.raises(nc.ArchitectureError, match="at least one"):
        nc.evaluate_ensemble([], data)
    other_state = nc.Network.from_preset("digits", t1=6, t2=2, state_bits=10, seed=3)
    with pytest.raises(nc.ArchitectureError, match="10 bits"):
        nc.evaluate_ensemble([nets[0], other_state], data)
    five = nc.Network.create("1x8x8:c8k3p1-f5", seed=0)
    with pytest.raises(nc.ArchitectureError, match="5 classes"):
        nc.evaluate_ensemble([nets[0], five], data)
    with pytest.raises(nc.DataError, match="split"):
        nc.evaluate_ensemble(nets, data, "validation")
    with pytest.raises(nc.DataError, match="no test images"):
        nc.evaluate_ensemble(nets, data.subset(None, 0))


def test_states_and_ensemble_are_the_same_integers_on_the_torch_mirror(trained):
    data, nets = trained
    small = data.subset(None, 12)
    for net in nets:
        core, mirror = nc.output_states(net, small), nc.output_states(net, small, backend="torch")
        np.testing.assert_array_equal(core[0], mirror[0])
        np.testing.assert_array_equal(core[1], mirror[1])
    a, b = nc.evaluate_ensemble(nets, small), nc.evaluate_ensemble(nets, small, backend="torch")
    np.testing.assert_array_equal(a.ensemble.confusion, b.ensemble.confusion)

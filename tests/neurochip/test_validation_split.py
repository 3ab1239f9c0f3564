"""Validation split (neurochip.validation_split) and best-on-validation tracking."""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.errors import UserError
from neurochip.network import Network, get_preset
from neurochip.validation_split import BestTracker, parse_split, split_count, split_indices


def test_parse_and_count():
    assert parse_split("5000") == 5000 and parse_split("0.1") == 0.1
    assert split_count(5000, 15000) == 5000 and split_count(0.1, 1438) == 144
    for bad in ("0", "-3", "1.5", "abc", "nan"):
        with pytest.raises(UserError):
            parse_split(bad)
    for split, n in ((100, 100), (0.0001, 100)):
        with pytest.raises(UserError):
            split_count(split, n)


def test_split_is_a_deterministic_partition_from_the_seed():
    tr, va = split_indices(1000, 200, seed=7)
    assert len(va) == 200 and len(tr) == 800
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)      # original order kept
    tr2, va2 = split_indices(1000, 200, seed=7)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, split_indices(1000, 200, seed=8)[1])


def test_best_tracker_keeps_the_earliest_lowest():
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0)
    bt = BestTracker()
    assert bt.consider(net, 1, 0.30)
    sha1 = net.weights_sha256()
    net.weights_q[0][0, 0, 0, 0] += 1
    net.updates = 5
    assert not bt.consider(net, 2, 0.30)                 # a tie keeps the earlier one
    assert bt.net.weights_sha256() == sha1 and bt.record["epoch"] == 1
    assert bt.consider(net, 3, 0.25)
    assert bt.record == {"epoch": 3, "val_error": 0.25, "updates": 5}
    net.weights_q[0][0, 0, 0, 0] += 1                    # a copy, not a view
    assert bt.net.weights_sha256() != net.weights_sha256()

"""--weight-headroom: the initial weights' share of the signed range."""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurochip.errors import UserError
from neurochip.network import Network, get_preset, weight_exponent


@pytest.mark.parametrize("bits", [4, 8, 16])
@pytest.mark.parametrize("headroom", [0.125, 0.25, 0.5, 0.75, 1.0])
def test_exponent_is_the_largest_within_the_share(bits, headroom):
    w_hi = 2 ** (bits - 1) - 1
    for fan_in in (9, 25, 144, 800, 4608):
        e = weight_exponent(fan_in, bits, headroom)
        bound = 1.0 / math.sqrt(fan_in)
        assert bound * 2.0 ** e <= headroom * w_hi < bound * 2.0 ** (e + 1)


def test_default_is_half_and_changes_nothing():
    p = get_preset("mnist-small")
    a = Network.create(p.arch, p.hyper, p.widths, seed=3)
    b = Network.create(p.arch, p.hyper, p.widths, seed=3, weight_headroom=0.5)
    assert a.weight_exp == b.weight_exp and a.weights_sha256() == b.weights_sha256()
    c = Network.create(p.arch, p.hyper, p.widths, seed=3, weight_headroom=0.25)
    assert c.weight_exp == [e - 1 for e in a.weight_exp]
    # the same real draw, one bit coarser: max |w| about halves
    for wa, wc in zip(a.weights_q, c.weights_q):
        assert abs(int(np.abs(wc).max()) * 2 - int(np.abs(wa).max())) <= 2


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan")])
def test_bad_headroom_is_a_user_error(bad):
    p = get_preset("digits")
    with pytest.raises(UserError):
        Network.create(p.arch, p.hyper, p.widths, seed=0, weight_headroom=bad)

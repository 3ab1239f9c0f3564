"""neurochip.bounds: configurations whose integers could overflow are refused before any work."""
from __future__ import annotations

import dataclasses

import pytest

from neurochip.network import Network, get_preset


def test_headroom_refuses_configurations_that_could_overflow():
    from neurochip.errors import UserError
    from neurochip.bounds import check_headroom
    for name in ("digits", "digits-fc", "digits-2c", "mnist-small", "paper-mnist", "paper-fmnist"):
        p = get_preset(name)
        for bits in (2, 8, 16):
            check_headroom(Network.create(p.arch, p.hyper, dataclasses.replace(p.widths, weight_bits=bits)))
    p = get_preset("paper-mnist")
    check_headroom(Network.create(p.arch, p.hyper, dataclasses.replace(p.widths, trace_bits=16)))
    big = Network.create(p.arch, dataclasses.replace(p.hyper, batch_size=1000),
                         dataclasses.replace(p.widths, trace_bits=16))
    with pytest.raises(UserError, match="overflow"):
        check_headroom(big)
    check_headroom(big, training=False)          # evaluation alone is fine

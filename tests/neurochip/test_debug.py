"""neurochip.debug: every register checked against its declared width."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurochip import numerics as nx
from neurochip.core import CoreNet
from neurochip.kinds import REC_DEC, REC_S
from neurochip.debug import DebugBackend, RegisterWidthError, check_batch, check_parameters, enabled
from neurochip.network import Network, get_preset
from neurochip.trainer import make_backend, train_step
from tests.helpers import digits_inputs as _digits


def test_debug_checks_find_out_of_range_registers():
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=1)
    x, y = _digits(3)
    res = CoreNet(net).run(x, y, train=True, record=True)
    check_batch(net, res, True)
    one = 1 << net.widths.state_bits
    for kind, value, needle in ((REC_DEC, nx.REG_MAX + 1, "decoder"), (REC_S, one + 1, "state s"),
                                (REC_S, -1, "state s")):
        bad = dataclasses.replace(res, rec_state=res.rec_state.copy())
        bad.rec_state[1, 2, kind, 70] = value
        with pytest.raises(RegisterWidthError, match=needle) as exc:
            check_batch(net, bad, True)
        assert "sample 1" in str(exc.value) and "layer 1" in str(exc.value)
    bad = dataclasses.replace(res, traces=res.traces.copy())
    bad.traces[0, 0, 5] = 256
    with pytest.raises(RegisterWidthError, match="trace"):
        check_batch(net, bad, True)
    net.weights_q[1][0, 0] = 128
    with pytest.raises(RegisterWidthError, match="layer 2 weight"):
        check_parameters(net)


@pytest.mark.parametrize("preset", ["digits", "digits-2c"])
def test_debug_backend_changes_nothing(preset):
    """Recording, chunking (one sample at a time) and checking give the same integers."""
    p = get_preset(preset)
    hyper = dataclasses.replace(p.hyper, batch_size=10, t1=20, t2=6, pool="max" if preset == "digits" else "avg")
    a = Network.create(p.arch, hyper, p.widths, seed=4)
    b = a.copy()
    ba, bb = make_backend(a), DebugBackend(make_backend(b), b, record_bytes=1)
    x, y = _digits(30)
    for i in range(3):
        ra, rb = ba.run(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10]), bb.run(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
        for f in ("traces", "pool_idx", "s_free", "predictions", "counts"):
            assert np.array_equal(getattr(ra, f), getattr(rb, f)), f
        train_step(ba, a, x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
        train_step(bb, b, x[10 * i:10 * i + 10], y[10 * i:10 * i + 10])
    assert a.weights_sha256() == b.weights_sha256()
    assert bb.batches_checked == 6 and bb.updates_checked == 3


def test_debug_switch(monkeypatch):
    for value, want in (("1", True), ("yes", True), ("0", False), ("", False), ("off", False)):
        monkeypatch.setenv("NEUROCHIP_DEBUG", value)
        assert enabled() is want
    monkeypatch.delenv("NEUROCHIP_DEBUG")
    assert enabled() is False and enabled(True) is True

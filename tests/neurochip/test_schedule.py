"""Learning-rate schedules (neurochip.schedule) and their path into the constants."""
from __future__ import annotations

import math

import pytest

from neurochip.errors import UserError
from neurochip.network import Network, get_preset
from neurochip.schedule import LRSchedule, first_changed_epoch


def test_factors():
    assert [LRSchedule().factor(e, 5) for e in range(5)] == [1.0] * 5
    step = LRSchedule("step", step_epochs=2, gamma=0.5)
    assert [step.factor(e, 6) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cos = LRSchedule("cosine", min_factor=0.1)
    f = [cos.factor(e, 4) for e in range(4)]
    assert f[0] == 1.0 and all(a > b for a, b in zip(f, f[1:])) and f[-1] > 0.1
    assert math.isclose(f[2], 0.1 + 0.9 * 0.5)          # halfway: cos(pi/2) = 0


@pytest.mark.parametrize("kw", [{"kind": "linear"}, {"kind": "step", "gamma": 0.0},
                                {"kind": "step", "gamma": 1.5}, {"step_epochs": 0},
                                {"min_factor": -0.1}, {"min_factor": float("nan")}])
def test_invalid_schedules_are_one_line_errors(kw):
    with pytest.raises(UserError):
        LRSchedule(**kw).validate()


def test_round_trip():
    s = LRSchedule("cosine", 3, 0.25, 0.05).validate()
    assert LRSchedule.from_dict(s.as_dict()) == s
    assert LRSchedule.from_dict(None) == LRSchedule()


def test_factor_goes_through_the_lr_constants_only():
    p = get_preset("mnist-small")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0)
    base, half = net.constants(), net.constants(0.5)
    assert net.constants(1.0) == base
    for a, b in zip(base.layers, half.layers):
        # the same mantissa, one more shift: exactly half the rate
        assert (b.lr_w[0], b.lr_w[1]) == (a.lr_w[0], a.lr_w[1] + 1)
        assert (b.lr_b[0], b.lr_b[1]) == (a.lr_b[0], a.lr_b[1] + 1)
        assert (a.sh_fwd, a.fb_mult, a.sh_fb, a.sh_out) == (b.sh_fwd, b.fb_mult, b.sh_fb, b.sh_out)
    assert (base.one, base.beta_q, base.w_range) == (half.one, half.beta_q, half.w_range)


def test_the_python_api_takes_a_schedule():
    import neurochip as nc
    net = nc.Network.from_preset("digits", bits=8)
    data = nc.load_dataset("digits")
    small = data.subset(60, 20)
    run = nc.train(net, small, epochs=2, lr_schedule=LRSchedule("step", 1, 0.5))
    assert [h["lr_factor"] for h in run.history] == [1.0, 0.5]


def test_first_changed_epoch():
    const, cos = LRSchedule(), LRSchedule("cosine")
    step20 = LRSchedule("step", step_epochs=20, gamma=0.1)
    # 20 constant epochs continued as a drop after epoch 20: no trained epoch changes
    assert first_changed_epoch(const, 20, step20, 26, trained=20) is None
    # one epoch of the next (partly trained) would: its factor 1 becomes 0.1 (0-based epoch 20)
    assert first_changed_epoch(const, 20, step20, 26, trained=21) == 20
    # cosine depends on the planned total: lengthening it changes epoch 2's factor (0-based 1)
    assert first_changed_epoch(cos, 4, cos, 8, trained=3) == 1
    assert first_changed_epoch(cos, 4, cos, 4, trained=4) is None
    assert first_changed_epoch(const, 5, cos, 5, trained=1) is None      # both start at 1
    assert first_changed_epoch(const, 5, cos, 5, trained=0) is None

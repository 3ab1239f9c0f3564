"""Learning-health diagnostics (neurochip.health): observations, counters, report."""
from __future__ import annotations

import numpy as np
import pytest

from neurochip import health, learning
from neurochip.data import load_digits
from neurochip.network import Network, get_preset
from neurochip.trainer import make_backend, train_step


def _traces(out_plus, out_minus):
    hidden = learning.LayerTraces(np.ones((2, 3), np.int64), np.ones((2, 3), np.int64))
    return [hidden, learning.LayerTraces(np.asarray(out_plus, np.int64), np.asarray(out_minus, np.int64))]


def _grads(*values):
    return [(np.full((2, 2), v, np.int64), np.zeros(2, np.int64)) for v in values]


def test_observe_step_silent_output_and_zero_sums():
    silent = health.observe_step(_traces(np.zeros((2, 4)), np.zeros((2, 4))), _grads(0, 0))
    assert silent == health.Observation(output_silent=True, sums_zero=True)
    # one output trace in one phase is enough to be not silent
    plus = np.zeros((2, 4))
    plus[1, 3] = 1
    assert not health.observe_step(_traces(plus, np.zeros((2, 4))), _grads(0, 0)).output_silent
    assert not health.observe_step(_traces(np.zeros((2, 4)), plus), _grads(0, 0)).output_silent
    # one non-zero sum anywhere (weights or biases) is not a stall
    assert not health.observe_step(_traces(plus, plus), _grads(0, 3)).sums_zero
    g = _grads(0, 0)
    g[0] = (g[0][0], np.array([0, -1], np.int64))
    assert not health.observe_step(_traces(plus, plus), g).sums_zero


def test_monitor_counts_and_stops_on_a_mostly_stalled_full_window():
    mon = health.HealthMonitor(window=4)
    ok = health.Observation(False, False)
    dead = health.Observation(True, True)
    for obs in (ok, dead, ok, dead, ok):
        mon.observe(obs)
    c = mon.state()
    assert (c["updates"], c["silent"], c["stalled"], c["first_silent"], c["trailing_stalled"],
            c["recent"]) == (5, 2, 2, 2, 0, "1010")
    assert not mon.stopped()
    mon.observe(dead)                             # '0101': 2 of 4
    assert not mon.stopped()
    mon.observe(dead)                             # '1011': 3 of 4 = STALL_SHARE, the latest stalled
    rep = mon.report()
    assert rep["stopped"] and rep["stopped_since_update"] == 2
    assert any("output layer silent in both nudged phases" in r for r in rep["reasons"])
    assert any("contrastive sums all zero" in r for r in rep["reasons"])
    mon.observe(ok)                               # the latest update learned: not stopped
    assert not mon.report()["stopped"]
    short = health.HealthMonitor(window=4)
    for _ in range(3):
        short.observe(dead)
    assert not short.stopped()                    # too few updates to judge


def test_monitor_state_round_trip_continues_identically():
    obs = [health.Observation(bool(i % 3 == 0), bool(i % 2 == 0)) for i in range(17)]
    whole = health.HealthMonitor()
    for o in obs:
        whole.observe(o)
    first = health.HealthMonitor()
    for o in obs[:7]:
        first.observe(o)
    second = health.HealthMonitor.from_state(first.state())
    for o in obs[7:]:
        second.observe(o)
    assert second.report() == whole.report()


def test_rail_fractions_and_report_reason():
    w = [np.array([-128, 127, 0, 5], np.int32), np.zeros((3, 3), np.int32)]
    assert health.rail_fractions(w, (-128, 127)) == [0.5, 0.0]
    rep = health.HealthMonitor().report(health.rail_fractions(w, (-128, 127)))
    assert rep["reasons"] == ["layer 1: 50.0% of weights at the rails"] and not rep["stopped"]
    assert health.warning_line(rep).startswith("warning: learning health: layer 1")
    assert health.warning_line(health.HealthMonitor().report([0.0, 0.01])) is None


def test_a_dead_output_layer_is_detected_on_a_real_network():
    """Biases driven far negative silence the output in every phase: the real
    trainer's traces and sums are seen as a stall and learning stops."""
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0)
    lo, _ = net.constants().b_range
    net.biases_q[-1][:] = lo
    backend = make_backend(net)
    ds = load_digits()
    x = ds.quantised(ds.train_x[:20 * 12], net.widths.state_bits)
    mon = health.HealthMonitor(window=10)
    before = net.weights_sha256()
    for i in range(12):
        step = train_step(backend, net, x[20 * i:20 * (i + 1)], ds.train_y[20 * i:20 * (i + 1)])
        mon.observe(health.observe_step(step.traces, step.grads))
    assert net.weights_sha256() == before          # nothing learned: the sums were all zero
    rep = mon.report()
    assert rep["stopped"] and rep["counters"]["silent"] == 12 and rep["stopped_since_update"] == 1
    assert rep["counters"]["recent"] == "1" * 10


def test_a_healthy_network_is_not_reported():
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0)
    backend = make_backend(net)
    ds = load_digits()
    x = ds.quantised(ds.train_x[:60], net.widths.state_bits)
    mon = health.HealthMonitor()
    for i in range(3):
        step = train_step(backend, net, x[20 * i:20 * (i + 1)], ds.train_y[20 * i:20 * (i + 1)])
        mon.observe(health.observe_step(step.traces, step.grads))
    assert mon.state()["stalled"] == 0 and not mon.report()["stopped"]


def _epoch(epoch, val_error, spikes=None):
    rec = {"epoch": epoch, "train_error_on_the_fly": 0.5, "val_error": val_error}
    if spikes is not None:
        rec["val_spikes_per_sample"] = spikes
    return rec


def test_activity_rise_compares_the_latest_epoch_with_the_first_best():
    assert health.activity_rise([]) is None
    assert health.activity_rise([_epoch(1, 0.2), _epoch(2, 0.1)]) is None     # recorded before the key
    hist = [_epoch(1, 0.15),                        # no spikes recorded, not the best: ignored
            _epoch(2, 0.20, [100.0, 0.0]), _epoch(3, 0.10, [300.0, 0.5]),
            _epoch(4, 0.10, [900.0, 0.2]), _epoch(5, 0.30, [650.0, 2.5])]
    rise = health.activity_rise(hist)
    assert rise == health.ActivityRise(3, 5, [300.0, 0.5], [650.0, 2.5])
    assert rise.ratios == [650.0 / 300.0, 2.5]       # a layer below one spike at its best: over 1
    assert health.activity_rise(hist[:3]).ratios == [1.0, 0.5]     # latest = best


def test_activity_rise_is_not_measured_against_a_later_baseline():
    # the best epoch predates the record (a run resumed across the key's arrival): comparing
    # the latest with the best *recorded* epoch would hide a runaway that began before it
    hist = [_epoch(1, 0.05), _epoch(2, 0.20, [100.0, 0.0]), _epoch(3, 0.30, [900.0, 2.5])]
    assert health.activity_rise(hist) is None
    # nor when the latest epoch has none (the record cannot be older than the latest epoch)
    assert health.activity_rise([_epoch(1, 0.05, [1.0, 1.0]), _epoch(2, 0.2)]) is None


def test_report_names_a_layer_whose_activity_ran_away():
    mon = health.HealthMonitor()
    calm = health.ActivityRise(22, 26, [47305.0, 4202.0], [65822.0, 8404.0])      # 1.39x, 2.0x
    rep = mon.report(activity=calm)
    assert rep["reasons"] == [] and not rep["stopped"]
    assert rep["activity"] == {"best_epoch": 22, "latest_epoch": 26, "best": [47305.0, 4202.0],
                               "latest": [65822.0, 8404.0], "ratios": [round(65822 / 47305, 6), 2.0]}
    runaway = calm._replace(latest=[65822.0, 15250.0])                            # 3.63x
    rep = mon.report(activity=runaway)
    assert rep["reasons"] == ["layer 2: 3.6x the free-phase spikes per validation sample at epoch "
                              "26 (15,250) as at the best epoch 22 (4,202)"]
    assert health.warning_line(rep).startswith("warning: learning health: layer 2: 3.6x")
    assert mon.report()["activity"] is None

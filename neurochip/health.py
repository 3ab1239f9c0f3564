"""Learning-health diagnostics: has training stopped, and why.

EP learns only from the difference between its two nudged phases.  When the
output layer is silent (every output state 0, so every output trace 0) in
*both* nudged phases, the nudge cannot move it, the feedback into the hidden
layers is the same in both phases, every contrastive sum is exactly 0 and no
weight ever changes again: learning has stopped for good, whatever the data.
This module watches each update for that, the weights for piling up at the
ends of their range, and the hidden activity for running away (a layer firing
several times as often on the validation images as at the best-on-validation
epoch: learning goes on but the fit gets worse), and reports it (``--json``
``learning_health``, one warning line on stderr, a line in the summary).

A :class:`HealthMonitor` is fed one :class:`Observation` per update
(:func:`observe_step` builds it from the trainer's traces and contrastive
sums); its state is a small dict of counters so that a resumed run reports
exactly what an uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .trainer import Callback

#: the trailing window of updates judged for "stopped": learning counts as
#: stopped for good when at least STALL_SHARE of its updates changed nothing
#: (a dead output layer is woken now and then by a rare minibatch, which moves
#: a few weights and falls silent again, so an unbroken run is too strict)
STALL_WINDOW = 20
STALL_SHARE = 0.75
#: a layer whose share of weights at either end of the range exceeds this is reported
RAIL_FRACTION_WARN = 0.05
#: a layer whose free-phase spikes per validation sample, at the latest epoch, exceed this
#: multiple of those at the best-on-validation epoch is reported (a runaway of hidden activity:
#: one fmnist-large seed's second conv layer came to fire 4.06x its best epoch's spikes per
#: validation sample as its validation error rose from 11.4 to 13.9 %; healthy runs stay
#: within 1.1x, docs/results.md §6)
ACTIVITY_RISE_WARN = 2.0


@dataclass(frozen=True)
class Observation:
    """What one update looked like.

    ``output_silent``: every output trace of the minibatch was 0 in both
    nudged phases; ``sums_zero``: every contrastive sum (weights and biases,
    all layers) was 0, so the update changed nothing.
    """

    output_silent: bool
    sums_zero: bool


def observe_step(traces, grads) -> Observation:
    """The :class:`Observation` of one update.

    Parameters
    ----------
    traces : list of :class:`neurochip.learning.LayerTraces`
        Per layer (index 0 = input), int64 ``(B, *state_shape)`` traces of
        the +beta and -beta phases.
    grads : list of (ndarray, ndarray)
        Per layer 1..L, the int64 contrastive sums ``(G, Gb)``.
    """
    out = traces[-1]
    silent = not (np.any(out.plus) or np.any(out.minus))
    zero = not any(np.any(g) or np.any(gb) for g, gb in grads)
    return Observation(bool(silent), bool(zero))


def rail_fractions(weights_q, w_range: tuple[int, int]) -> list[float]:
    """Per layer, the fraction of weights at either end of the signed range.

    ``weights_q``: int arrays (any shape); ``w_range``: ``(lo, hi)`` inclusive.
    """
    lo, hi = w_range
    return [float(np.count_nonzero((w == lo) | (w == hi))) / max(w.size, 1) for w in weights_q]


class ActivityRise(NamedTuple):
    """Hidden activity at the latest epoch against the best-on-validation epoch.

    ``best_epoch`` / ``latest_epoch``: 1-based epochs; ``best`` / ``latest``: per layer
    1..L, free-phase spikes per validation sample (the history's ``val_spikes_per_sample``).
    """

    best_epoch: int
    latest_epoch: int
    best: list
    latest: list

    @property
    def ratios(self) -> list[float]:
        """Per layer, ``latest / max(best, 1)`` (a layer silent at its best counts as one spike)."""
        return [float(lat) / max(float(b), 1.0) for b, lat in zip(self.best, self.latest)]

    def as_dict(self) -> dict:
        """JSON-ready: the four fields and the ratios (rounded to 6 places)."""
        return {**self._asdict(), "ratios": [round(r, 6) for r in self.ratios]}


def activity_rise(history: list[dict]) -> ActivityRise | None:
    """The :class:`ActivityRise` of a run's per-epoch ``history`` (:func:`neurochip.trainer.fit`).

    The best epoch is the first with the lowest ``val_error``, as the best-on-validation
    weights are kept.  None when it or the latest epoch did not record
    ``val_spikes_per_sample`` (no validation split, or a run resumed from epochs trained
    before the key existed): a later, recorded epoch would be a false baseline, and a
    runaway that began before it would read as steady.
    """
    scored = [h for h in history if "val_error" in h]
    if not scored:
        return None
    best = min(scored, key=lambda h: h["val_error"])        # min keeps the first of equals
    latest = scored[-1]
    if "val_spikes_per_sample" not in best or "val_spikes_per_sample" not in latest:
        return None
    return ActivityRise(int(best["epoch"]), int(latest["epoch"]),
                        list(best["val_spikes_per_sample"]), list(latest["val_spikes_per_sample"]))


@dataclass
class HealthMonitor:
    """Counters over the updates of a run (resumable through :meth:`state`).

    ``updates``: updates observed; ``silent`` / ``stalled``: how many had a
    silent output layer / all contrastive sums 0; ``first_silent`` /
    ``first_stalled``: the 1-based update where that first happened (0 =
    never); ``trailing_silent`` / ``trailing_stalled``: consecutive such
    updates up to the latest one; ``recent``: the last ``window`` updates,
    '1' for a stalled one (oldest first).
    """

    window: int = STALL_WINDOW
    counters: dict = field(default_factory=lambda: {
        **dict.fromkeys(("updates", "silent", "stalled", "first_silent", "first_stalled",
                         "trailing_silent", "trailing_stalled"), 0), "recent": ""})

    def observe(self, obs: Observation) -> None:
        c = self.counters
        c["updates"] += 1
        for key, hit in (("silent", obs.output_silent), ("stalled", obs.sums_zero)):
            if hit:
                c[key] += 1
                c[f"trailing_{key}"] += 1
                if not c[f"first_{key}"]:
                    c[f"first_{key}"] = c["updates"]
            else:
                c[f"trailing_{key}"] = 0
        c["recent"] = (c["recent"] + ("1" if obs.sums_zero else "0"))[-self.window:]

    def state(self) -> dict:
        return dict(self.counters)

    @staticmethod
    def from_state(state: dict | None, window: int = STALL_WINDOW) -> "HealthMonitor":
        mon = HealthMonitor(window)
        for key, value in (state or {}).items():
            if key == "recent":
                mon.counters[key] = str(value)[-window:]
            elif key in mon.counters:
                mon.counters[key] = int(value)
        return mon

    def stopped(self) -> bool:
        """Learning stopped for good: a full window of recent updates, at least
        :data:`STALL_SHARE` of them with every contrastive sum 0, the latest included."""
        recent = self.counters["recent"]
        return (len(recent) >= self.window and recent.endswith("1")
                and recent.count("1") >= STALL_SHARE * self.window)

    def report(self, rails: list[float] | None = None, activity: ActivityRise | None = None) -> dict:
        """The ``learning_health`` record: ``stopped``, ``reasons`` and the counters.

        ``rails``: per-layer fractions of weights at the range ends
        (:func:`rail_fractions`), or None when not measured; ``activity``: the hidden
        activity's rise (:func:`activity_rise`), or None when not measured.
        """
        c = self.counters
        n = c["updates"]
        reasons = []
        if c["silent"]:
            reasons.append(f"output layer silent in both nudged phases in {c['silent']} of {n} "
                           f"updates (first at update {c['first_silent']}"
                           + (", through the last)" if c["trailing_silent"] else ")"))
        if c["stalled"]:
            reasons.append(f"contrastive sums all zero in {c['stalled']} of {n} updates "
                           f"(first at update {c['first_stalled']}"
                           + (f", the last {c['trailing_stalled']} in a row)" if c["trailing_stalled"]
                              else ")"))
        for l, frac in enumerate(rails or [], start=1):
            if frac > RAIL_FRACTION_WARN:
                reasons.append(f"layer {l}: {frac:.1%} of weights at the rails")
        for l, rise in enumerate(activity.ratios if activity else [], start=1):
            if rise > ACTIVITY_RISE_WARN:
                reasons.append(f"layer {l}: {rise:.1f}x the free-phase spikes per validation sample "
                               f"at epoch {activity.latest_epoch} ({activity.latest[l - 1]:,.0f}) as at "
                               f"the best epoch {activity.best_epoch} ({activity.best[l - 1]:,.0f})")
        return {"stopped": self.stopped(), "reasons": reasons,
                "stopped_since_update": c["first_stalled"] if self.stopped() else None,
                "window_updates": self.window, "stall_share": STALL_SHARE, "counters": dict(c),
                "rail_fractions": [round(f, 6) for f in rails] if rails is not None else None,
                "rail_fraction_warn": RAIL_FRACTION_WARN,
                "activity": None if activity is None else activity.as_dict(),
                "activity_rise_warn": ACTIVITY_RISE_WARN}


def warning_line(report: dict) -> str | None:
    """The one stderr line for a report with reasons (None when healthy)."""
    if not report["reasons"]:
        return None
    head = (f"learning stopped (first stalled at update {report['stopped_since_update']})"
            if report["stopped"] else "learning health")
    return f"warning: {head}: " + "; ".join(report["reasons"])


class HealthCallback(Callback):
    """A :func:`neurochip.trainer.fit` callback feeding ``monitor`` every update."""

    def __init__(self, monitor: HealthMonitor):
        self.monitor = monitor

    def on_batch_end(self, state, batch) -> None:
        self.monitor.observe(observe_step(batch.step.traces, batch.step.grads))

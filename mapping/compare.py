"""Element-for-element comparison of two :class:`neurochip.core.BatchResult`.

Used by ``python -m mapping.check`` and the tests: every integer the core
produces (spikes of every layer at every step, the state at the end of every
phase, traces, counters, the free-phase output) is compared with exact
equality; the result is the number of differing integers per layer and field.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurochip.core import COUNT_NAMES, BatchResult, CoreLayout

STATE_KINDS = ("s", "dec", "psi", "enc_prev")


def n_differ(a, b) -> int:
    """Differing elements; a shape mismatch counts every element of both."""
    if a is None and b is None:
        return 0
    if a is None or b is None:
        return int(np.size(a if a is not None else b))
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return int(a.size + b.size)
    return int(np.count_nonzero(a != b))


@dataclass
class LayerDiff:
    layer: int
    neurons: int
    spikes_ref: int = 0
    spikes_other: int = 0
    diff: dict = field(default_factory=dict)     # field name -> differing integers

    @property
    def total(self) -> int:
        return int(sum(self.diff.values()))


@dataclass
class Comparison:
    layers: list
    extra: dict = field(default_factory=dict)    # whole-network fields
    compared: int = 0                            # integers compared in all

    @property
    def total(self) -> int:
        return int(sum(l.total for l in self.layers) + sum(self.extra.values()))

    def lines(self, title: str = "") -> list[str]:
        out = [title] if title else []
        out.append(f"  {'layer':>5} {'neurons':>7} {'spikes core':>12} {'spikes lava':>12} "
                   f"{'differing':>10}  fields compared")
        for l in self.layers:
            fields = ", ".join(f"{k}={v}" for k, v in l.diff.items())
            out.append(f"  {l.layer:>5} {l.neurons:>7} {l.spikes_ref:>12} {l.spikes_other:>12} "
                       f"{l.total:>10}  {fields}")
        if self.extra:
            out.append("  network: " + ", ".join(f"{k}={v}" for k, v in self.extra.items()))
        out.append(f"  {self.compared} integers compared, {self.total} differ")
        return out


def compare_batches(ref: BatchResult, other: BatchResult, layout: CoreLayout,
                    train: bool) -> Comparison:
    """Per layer: spikes (every step), end-of-phase states, traces, counters."""
    n_ph = 3 if train else 1
    layers = []
    compared = 0
    for l, (o, n) in enumerate(zip(layout.offsets, layout.sizes)):
        sl = slice(o, o + n)
        d = LayerDiff(l, n)
        if ref.rec_spikes is not None or other.rec_spikes is not None:
            a = None if ref.rec_spikes is None else ref.rec_spikes[..., sl]
            b = None if other.rec_spikes is None else other.rec_spikes[..., sl]
            d.diff["spikes"] = n_differ(a, b)
            compared += int(np.size(a))
            d.spikes_ref = int(a.sum()) if a is not None else 0
            d.spikes_other = int(b.sum()) if b is not None else 0
        if ref.rec_state is not None or other.rec_state is not None:
            for k, name in enumerate(STATE_KINDS):
                a = None if ref.rec_state is None else ref.rec_state[:, :n_ph, k, sl]
                b = None if other.rec_state is None else other.rec_state[:, :n_ph, k, sl]
                d.diff[name] = n_differ(a, b)
                compared += int(np.size(a))
        if train:
            d.diff["traces"] = n_differ(ref.traces[..., sl], other.traces[..., sl])
            compared += int(ref.traces[..., sl].size)
        d.diff["counts"] = n_differ(ref.counts[:, :, l], other.counts[:, :, l])
        compared += int(ref.counts[:, :, l].size)
        layers.append(d)
    extra = {"s_free": n_differ(ref.s_free, other.s_free),
             "predictions": n_differ(ref.predictions, other.predictions)}
    compared += int(ref.s_free.size + ref.predictions.size)
    return Comparison(layers, extra, compared)


def count_lines(res: BatchResult) -> list[str]:
    """Summed counters per phase and layer (for printing)."""
    c = res.counts.sum(axis=0)
    out = []
    for p in range(c.shape[0]):
        if not c[p].any():
            continue
        out.append(f"  phase {p}: " + "; ".join(
            f"L{l} " + " ".join(f"{COUNT_NAMES[k]}={int(c[p, l, k])}" for k in (0, 1, 2))
            for l in range(c.shape[1])))
    return out

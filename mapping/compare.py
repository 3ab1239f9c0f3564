"""Core vs Lava: the comparison of :mod:`neurochip.compare`, presented per layer.

Used by ``python -m mapping.check`` and the tests: every integer the core
produces (spikes of every layer at every step, the state at the end of every
phase, traces, counters, the free-phase output) is compared with exact
equality by :func:`neurochip.compare.diff_batches` (the same comparison
``reference.check`` uses); this module sums it per layer and prints it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from neurochip.compare import DiffTally, diff_batches, n_differ  # noqa: F401  (n_differ: re-exported)
from neurochip.core import BatchResult, CoreLayout
from neurochip.kinds import COUNT_NAMES


@dataclass
class LayerDiff:
    layer: int
    neurons: int
    spikes_ref: int = 0
    spikes_other: int = 0
    diff: dict = field(default_factory=dict)     # column -> differing integers (all phases)

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


def compare_batches(ref: BatchResult, other: BatchResult, layout: CoreLayout, train: bool,
                    net) -> Comparison:
    """Every integer of two results of ``net`` (:func:`neurochip.compare.diff_batches`), per layer."""
    tally = DiffTally()
    diff_batches(tally, net, layout, ref, other, train)
    layers = []
    for l, (o, n) in enumerate(zip(layout.offsets, layout.sizes)):
        d = LayerDiff(l, n)
        for key, v in tally.diff.items():
            if key[0] == l:
                d.diff[key[-1]] = d.diff.get(key[-1], 0) + v
        for res, attr in ((ref, "spikes_ref"), (other, "spikes_other")):
            if res.rec_spikes is not None:
                setattr(d, attr, int(res.rec_spikes[..., o:o + n].sum()))
        layers.append(d)
    extra = {key[1]: v for key, v in tally.diff.items() if key[0] == "all"}
    return Comparison(layers, extra, tally.compared())


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

"""One comparison of integer results, for every checker (core vs mirror, core vs Lava).

Two executions of the same network must agree integer for integer.  This
module is the one place that says how two results are compared and how
differences are counted: :func:`count_differing` (exact equality, elementwise),
:class:`DiffTally` (differing and compared integers per key) and
:func:`diff_batches` (every integer of two :class:`~neurochip.core.BatchResult`
s of the same batch, keyed ``(layer, phase, column)``).  ``reference.check``
and ``mapping.compare`` present these counts; they do not count on their own.
Approximations (netx, NIR in snnTorch) are compared by class prediction
instead: :func:`prediction_lines`.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .backend import is_max_pool_layer
from .kinds import STATE_NAMES

#: columns of :func:`diff_batches`, per (layer, phase)
SIM_COLUMNS = ("spikes",) + STATE_NAMES + ("trace", "argmax", "counts")


def count_differing(a, b) -> tuple[int, int]:
    """``(differing, compared)`` integers of two arrays, exact equality.

    Equal shapes: elementwise.  One side missing (None) or a shape mismatch:
    every integer of the larger side counts as compared and differing.
    """
    if a is None and b is None:
        return 0, 0
    if a is None or b is None:
        n = int(np.size(a if a is not None else b))
        return n, n
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        n = max(a.size, b.size, 1)
        return n, n
    return int(np.count_nonzero(a != b)), int(a.size)


def n_differ(a, b) -> int:
    """Differing integers of two arrays (:func:`count_differing`)."""
    return count_differing(a, b)[0]


class DiffTally:
    """Differing and compared integers, keyed (e.g. ``(layer, phase, column)``)."""

    def __init__(self):
        self.diff = defaultdict(int)
        self.total = defaultdict(int)

    def add(self, key, a, b) -> int:
        """Compare ``a`` with ``b`` and book it under ``key``; returns the differing count."""
        d, n = count_differing(a, b)
        self.diff[key] += d
        self.total[key] += n
        return d

    def differing(self) -> int:
        return int(sum(self.diff.values()))

    def compared(self) -> int:
        return int(sum(self.total.values()))

    def column(self, col) -> tuple[int, int]:
        """``(differing, compared)`` summed over the keys whose last part is ``col``."""
        return (sum(v for k, v in self.diff.items() if k[-1] == col),
                sum(v for k, v in self.total.items() if k[-1] == col))


def diff_batches(tally: DiffTally, net, layout, ref, other, train: bool,
                 pool_offs: np.ndarray | None = None) -> None:
    """Book every integer of two batch results of ``net`` into ``tally``.

    ``layout``: the :class:`~neurochip.core.CoreLayout` both results use
    (internal order); ``pool_offs``: :func:`neurochip.backend.max_pool_slots`
    offsets (max-pool argmax compared only where given).  Keys ``(l, p,
    column)`` for layer ``l`` and phase ``p`` (columns :data:`SIM_COLUMNS`;
    spikes per phase, end-of-phase states, traces and argmax after the nudged
    phases, counters) and ``("all", "s_free")``, ``("all", "predictions")``.
    Recordings (spikes, states) are compared where either side has them.
    """
    h = net.hyper
    n_ph = 3 if train else 1
    ranges = ((0, h.t1), (h.t1, h.t1 + h.t2), (h.t1 + h.t2, h.t1 + 2 * h.t2))[:n_ph]
    recorded = ref.rec_spikes is not None or other.rec_spikes is not None
    states = ref.rec_state is not None or other.rec_state is not None

    def part(arr, sl, *index):
        return None if arr is None else arr[index + (sl,)] if index else arr[..., sl]

    for l, (o, n) in enumerate(zip(layout.offsets, layout.sizes)):
        sl = slice(o, o + n)
        for p, (a, b) in enumerate(ranges):
            if recorded:
                tally.add((l, p, "spikes"), part(ref.rec_spikes, sl, slice(None), slice(a, b)),
                          part(other.rec_spikes, sl, slice(None), slice(a, b)))
            if states:
                for k, name in enumerate(STATE_NAMES):
                    tally.add((l, p, name), part(ref.rec_state, sl, slice(None), p, k),
                              part(other.rec_state, sl, slice(None), p, k))
            if p > 0:
                tally.add((l, p, "trace"), ref.traces[:, p - 1, sl], other.traces[:, p - 1, sl])
                if pool_offs is not None and is_max_pool_layer(net, l):
                    po = slice(int(pool_offs[l]), int(pool_offs[l]) + n)
                    tally.add((l, p, "argmax"), ref.pool_idx[:, p - 1, po], other.pool_idx[:, p - 1, po])
        for p in range(3):
            tally.add((l, p, "counts"), ref.counts[:, p, l], other.counts[:, p, l])
    tally.add(("all", "s_free"), ref.s_free, other.s_free)
    tally.add(("all", "predictions"), ref.predictions, other.predictions)


#: how the exact network is named next to an approximation's predictions
CORE_LABEL = "core (exact EP network, free phase)"


def prediction_lines(name: str, counts, core_predictions, labels) -> list[str]:
    """An approximation's class predictions next to the exact core's, as report lines.

    ``counts``: the approximation's output spike counts ``(N, classes)`` (its
    prediction is the first maximum); ``core_predictions`` and ``labels``:
    ``(N,)`` integers for the same images.  Three lines: the core's test
    error, the approximation's (and how many images had no output spike),
    and the share of images on which both predict the same class (%).
    """
    counts = np.asarray(counts)
    core_predictions = np.asarray(core_predictions)
    labels = np.asarray(labels)
    pred = np.argmax(counts, axis=1)
    silent = int((counts.sum(axis=1) == 0).sum())
    width = max(len(CORE_LABEL), len(name)) + 1

    def error(p) -> str:
        return f"test error {100 * (p != labels).mean():.2f} %"
    return [f"  {CORE_LABEL + ':':<{width}}  {error(core_predictions)}",
            f"  {name + ':':<{width}}  {error(pred)} "
            f"(argmax of output spike counts; {silent} images without an output spike)",
            f"  same prediction: {100 * (pred == core_predictions).mean():.2f} % of the images"]

"""Training and evaluation loops, independent of the backend that simulates.

A *backend* simulates batches (``run``) and re-reads the parameters after an
update (``refresh``).  The Numba core is the default; the PyTorch reference
(``reference.backend``) plugs in the same way.  The EP update itself is the
core's :mod:`neurochip.learning`, shared by all backends.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import learning
from .core import (N_COUNTS, PHASES, COUNT_NAMES, BatchResult, CoreLayout, CoreNet, M_KIND, KIND_CONV,
                   M_IS_MAX)
from .network import Network


class NumbaBackend:
    """The event-driven integer core (:mod:`neurochip.core`)."""

    name = "numba"

    def __init__(self, net: Network):
        self.core = CoreNet(net)
        self.net = net

    def refresh(self) -> None:
        self.core.refresh()

    def run(self, x_fp, labels=None, train=True, record=False) -> BatchResult:
        return self.core.run(x_fp, labels, train, record)

    def layer_traces(self, res: BatchResult) -> list[learning.LayerTraces]:
        """Canonical per-layer traces (index 0 = input) from a batch result."""
        return layer_traces(self.net, self.core.layout, res, self.core.pool_offs)


def layer_traces(net: Network, layout: CoreLayout, res: BatchResult,
                 pool_offs=None) -> list[learning.LayerTraces]:
    """Canonical per-layer traces (index 0 = input) of a batch result in internal order.

    Every backend's ``layer_traces``: ``layout`` is the core's
    :class:`~neurochip.core.CoreLayout` of ``net``; ``pool_offs`` (per layer,
    the offset of its max-pool argmax slots in ``res.pool_idx``, as
    ``CoreNet.pool_offs``) is needed only by max-pool conv layers.
    """
    arch = net.arch
    shapes = [arch.input_shape] + arch.state_shapes()
    plus = layout.split(res.traces[:, 0].astype(np.int64))
    minus = layout.split(res.traces[:, 1].astype(np.int64))
    bsz = res.traces.shape[0]
    out = []
    for l, shp in enumerate(shapes):
        shp = (bsz,) + tuple(shp)
        lt = learning.LayerTraces(plus[l].reshape(shp), minus[l].reshape(shp))
        if l > 0 and layout.meta[l, M_KIND] == KIND_CONV and layout.meta[l, M_IS_MAX]:
            o, n = int(pool_offs[l]), layout.sizes[l]
            lt.idx_plus = layout.to_canonical(l, res.pool_idx[:, 0, o:o + n]).reshape(shp)
            lt.idx_minus = layout.to_canonical(l, res.pool_idx[:, 1, o:o + n]).reshape(shp)
        out.append(lt)
    return out


def make_backend(net: Network, name: str = "numba", **kwargs):
    if name == "numba":
        return NumbaBackend(net)
    if name == "torch":
        from reference.backend import TorchBackend   # optional dependency
        return TorchBackend(net, **kwargs)
    raise ValueError(f"unknown backend {name!r}")


@dataclass
class Tally:
    """Counts the core took while running, summed (int64)."""

    counts: np.ndarray                       # (3 phases, L+1 layers, N_COUNTS)
    samples_train: int = 0
    samples_eval: int = 0
    learning_products: np.ndarray | None = None
    weight_writes: np.ndarray | None = None
    weight_saturations: np.ndarray | None = None
    bias_saturations: np.ndarray | None = None
    updates: int = 0

    @staticmethod
    def zeros(n_layers: int) -> "Tally":
        z = np.zeros(n_layers, np.int64)
        return Tally(np.zeros((3, n_layers + 1, N_COUNTS), np.int64), 0, 0, z.copy(), z.copy(),
                     z.copy(), z.copy())

    def saturations(self) -> dict:
        from .core import K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI
        c = self.counts
        return {"input_alignment": int(c[..., K_SAT_INPUT].sum()),
                "decoder": int(c[..., K_SAT_DEC].sum()),
                "encoder": int(c[..., K_SAT_PSI].sum()),
                "weights": int(self.weight_saturations.sum()),
                "biases": int(self.bias_saturations.sum())}

    def total_saturations(self) -> int:
        return int(sum(self.saturations().values()))

    def as_dict(self) -> dict:
        per_phase = {}
        for p, pname in enumerate(PHASES):
            per_phase[pname] = {name: [int(v) for v in self.counts[p, :, k]]
                                for k, name in enumerate(COUNT_NAMES)}
        return {"per_phase_per_layer": per_phase, "samples_train": self.samples_train,
                "samples_eval": self.samples_eval, "updates": self.updates,
                "learning_products": [int(v) for v in self.learning_products],
                "weight_writes": [int(v) for v in self.weight_writes],
                "saturations": self.saturations()}


@dataclass
class StepResult:
    predictions: np.ndarray
    loss: float
    stats: learning.UpdateStats | None = None


def mse_loss(net: Network, s_free: np.ndarray, labels: np.ndarray) -> float:
    """``1/2 sum_k (s_k - y_k)^2`` of the free-phase output, mean over the batch."""
    one = 1 << net.widths.state_bits
    y = np.zeros_like(s_free, dtype=np.float64)
    y[np.arange(len(labels)), labels] = 1.0
    return float(0.5 * ((s_free / one - y) ** 2).sum(axis=1).mean())


def train_step(backend, net: Network, x_fp: np.ndarray, labels: np.ndarray,
               tally: Tally | None = None) -> StepResult:
    """One EP update on a minibatch: three phases, contrastive sums, update."""
    res = backend.run(x_fp, labels, train=True)
    grads = learning.contrastive(net, backend.layer_traces(res))
    stats = learning.update_network(net, grads)
    backend.refresh()
    if tally is not None:
        tally.counts += res.counts.sum(axis=0)
        tally.samples_train += len(labels)
        tally.learning_products += learning.learning_products(net, len(labels))
        tally.weight_writes += stats.weight_writes
        tally.weight_saturations += stats.weight_saturations
        tally.bias_saturations += stats.bias_saturations
        tally.updates += 1
    return StepResult(res.predictions, mse_loss(net, res.s_free, labels), stats)


def evaluate(backend, net: Network, x_fp: np.ndarray, labels: np.ndarray, batch_size: int = 256,
             tally: Tally | None = None, progress=None) -> tuple[float, float]:
    """Free phase only; returns ``(error fraction, mean MSE loss)``."""
    wrong = 0
    loss = 0.0
    for start in range(0, len(labels), batch_size):
        sl = slice(start, start + batch_size)
        res = backend.run(x_fp[sl], labels[sl], train=False)
        wrong += int((res.predictions != labels[sl]).sum())
        loss += mse_loss(net, res.s_free, labels[sl]) * len(res.predictions)
        if tally is not None:
            tally.counts += res.counts.sum(axis=0)
            tally.samples_eval += len(res.predictions)
        if progress is not None:
            progress(len(res.predictions))
    return wrong / max(len(labels), 1), loss / max(len(labels), 1)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffled sample order of an epoch: a pure function of (seed, epoch)."""
    return np.random.Generator(np.random.PCG64([seed, epoch])).permutation(n)


@dataclass
class History:
    epochs: list = field(default_factory=list)

    def add(self, **kw):
        self.epochs.append(kw)


def train_epoch(backend, net: Network, x_fp, labels, epoch: int, tally: Tally,
                start_batch: int = 0, on_batch=None) -> tuple[float, float]:
    """One epoch of minibatch EP; returns (train error on the fly, mean loss).

    ``start_batch`` skips batches already done (resume); ``on_batch(i, step,
    wrong)`` is called after each update with the batch's misclassified count
    (progress, partial sums, checkpoints).
    """
    bs = net.hyper.batch_size
    order = epoch_order(net.seed, epoch, len(labels))
    n_batches = len(labels) // bs
    wrong = 0
    loss = 0.0
    seen = 0
    for i in range(start_batch, n_batches):
        idx = order[i * bs:(i + 1) * bs]
        step = train_step(backend, net, x_fp[idx], labels[idx], tally)
        batch_wrong = int((step.predictions != labels[idx]).sum())
        wrong += batch_wrong
        loss += step.loss * bs
        seen += bs
        if on_batch is not None:
            on_batch(i, step, batch_wrong)
    return wrong / max(seen, 1), loss / max(seen, 1)

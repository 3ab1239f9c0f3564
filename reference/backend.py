"""``TorchBackend``: the exact mirror behind the backend protocol (:mod:`neurochip.backend`).

Registered as backend ``torch`` (pyproject entry point), so
``neurochip.make_backend(net, 'torch', device='cuda')`` returns one;
``run`` returns a :class:`neurochip.core.BatchResult` whose arrays have the
core's dtypes, shapes and *internal* neuron order (conv maps channel-last,
:class:`neurochip.core.CoreLayout`), so the trainer, the learning rule and the
reports cannot tell the two backends apart.  The EP update in training is
:mod:`neurochip.learning`'s, shared by all backends (the mirror's own torch
update is used by :mod:`reference.check` and :mod:`reference.distributed`).
"""
from __future__ import annotations

import numpy as np

from neurochip import learning
from neurochip.backend import layer_traces, max_pool_slots
from neurochip.core import BatchResult, CoreLayout
from neurochip.network import Network

from .mirror import Mirror, MirrorResult


class TorchBackend:
    """Dense PyTorch execution (CPU or CUDA) giving the core's integers exactly."""

    name = "torch"

    def __init__(self, net: Network, device="cpu"):
        self.net = net
        self.mirror = Mirror(net, device)
        self.device = self.mirror.device
        self.layout = CoreLayout.build(net)
        lay = self.layout
        # canonical (all layers concatenated) -> internal flat positions
        self._gperm = np.concatenate([o + p for o, p in zip(lay.offsets, lay.perm)])
        self.pool_offs, self.n_pool = max_pool_slots(net)   # as every backend lays them out
        self.last: MirrorResult | None = None

    def refresh(self) -> None:
        """Re-read the integer parameters after an update of ``net``."""
        self.mirror.load(self.net)

    def _internal(self, per_layer: list, lead: tuple) -> np.ndarray:
        """Per-layer canonical tensors ``(*lead, *shape_l)`` -> ``(*lead, n_all)`` internal."""
        flat = np.concatenate([t.reshape(lead + (-1,)).cpu().numpy() for t in per_layer], -1)
        out = np.empty_like(flat)
        out[..., self._gperm] = flat
        return out

    def run(self, x_fp, labels=None, train=True, record=False) -> BatchResult:
        """Same arguments and result as :meth:`neurochip.core.CoreNet.run`."""
        res = self.mirror.run(x_fp, labels, train, record)
        self.last = res
        bsz = res.s_free.shape[0]
        traces = self._internal(res.traces, (bsz, 2)).astype(np.int32)
        pool_idx = np.zeros((bsz, 2, self.n_pool), np.int8)
        for l, idx in enumerate(res.pool_idx):
            if idx is not None:
                o, n = int(self.pool_offs[l]), self.layout.sizes[l]
                pool_idx[:, :, o:o + n] = self.layout.to_internal(
                    l, idx.reshape(bsz, 2, -1).cpu().numpy())
        s_free = res.s_free.cpu().numpy().astype(np.int64)
        out = BatchResult(traces, pool_idx, s_free, np.argmax(s_free, axis=1),
                          res.counts.cpu().numpy().astype(np.int64))
        if record:
            steps = res.rec_spikes[0].shape[1]
            out.rec_spikes = self._internal(res.rec_spikes, (bsz, steps)).astype(np.uint8)
            out.rec_state = self._internal(res.rec_state, (bsz, 3, 4)).astype(np.int64)
        return out

    def layer_traces(self, res: BatchResult) -> list[learning.LayerTraces]:
        """Canonical per-layer traces (index 0 = input), as ``NumbaBackend.layer_traces``."""
        return layer_traces(self.net, self.layout, res, self.pool_offs)

"""The backend protocol, the core's own backend, and the public description backends share.

A *backend* simulates batches of a :class:`~neurochip.network.Network`: the
trainer (:mod:`neurochip.trainer`) calls ``run`` for the phases, ``layer_traces``
for the learning rule's inputs and ``refresh`` after each update.  The Numba core
is built in; the PyTorch mirror (``reference``) and Lava (``mapping``) plug in
through :mod:`neurochip.registry` (group ``neurochip.backends``), so this
package never imports them.

Results are :class:`~neurochip.core.BatchResult` arrays in the core's
*internal* neuron order (conv maps channel-last); :func:`layer_traces` turns
them into canonical per-layer traces.  :func:`max_pool_slots` describes where
each layer's max-pool argmax slots sit in ``BatchResult.pool_idx``: every
backend lays them out this way, so no one needs the core's private tables.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from . import learning
from .core import BatchResult, CoreLayout, CoreNet
from .core.layout import is_max_pool_layer, max_pool_slots   # re-exported: part of the public description
from .network import Network


@runtime_checkable
class Backend(Protocol):
    """What the trainer needs from a simulator (structural: no base class to inherit)."""

    name: str
    net: Network

    def run(self, x_fp: np.ndarray, labels: np.ndarray | None = None, train: bool = True,
            record: bool = False) -> BatchResult:
        """Simulate a batch: int64 ``(B, N0)`` quantised pixels (canonical order)."""

    def refresh(self) -> None:
        """Re-read the integer parameters of ``net`` after an update."""

    def layer_traces(self, res: BatchResult) -> list[learning.LayerTraces]:
        """Canonical per-layer traces of ``res`` (index 0 = input)."""


def layer_traces(net: Network, layout: CoreLayout, res: BatchResult,
                 pool_offs: np.ndarray | None = None) -> list[learning.LayerTraces]:
    """Canonical per-layer traces (index 0 = input) of a batch result in internal order.

    Every backend's ``layer_traces``.  ``layout``: the :class:`~neurochip.core.CoreLayout`
    of ``net`` (offsets, sizes, permutations); ``pool_offs``: :func:`max_pool_slots`'
    offsets, needed only by max-pool conv layers.  Traces are int64 ``(B, *shape_l)``.
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
        if is_max_pool_layer(net, l):
            o, n = int(pool_offs[l]), layout.sizes[l]
            lt.idx_plus = layout.to_canonical(l, res.pool_idx[:, 0, o:o + n]).reshape(shp)
            lt.idx_minus = layout.to_canonical(l, res.pool_idx[:, 1, o:o + n]).reshape(shp)
        out.append(lt)
    return out


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


def backend_names() -> list[str]:
    """Names :func:`make_backend` accepts (registered backends; nothing is imported)."""
    from . import registry
    return registry.names("neurochip.backends")


def make_backend(net: Network, name: str = "numba", **kwargs) -> Backend:
    """A backend by name (:mod:`neurochip.registry`, group ``neurochip.backends``).

    ``kwargs`` go to the backend's factory (e.g. ``device='cuda'`` for ``torch``).
    Unknown names raise :class:`~neurochip.errors.UserError` listing the known ones.
    """
    from . import registry
    return registry.get("neurochip.backends", name)(net, **kwargs)

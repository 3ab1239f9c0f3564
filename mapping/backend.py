"""A trainer backend that simulates with Lava (the :mod:`neurochip.backend` protocol).

Registered as backend ``lava`` (pyproject entry point): ``--backend lava``.

``LavaBackend(net)`` has the same ``run`` / ``layer_traces`` / ``refresh``
methods as the core's ``NumbaBackend``, so ``neurochip.trainer.train_step``
trains through Lava unchanged: the three phases run in the Lava processes,
the update is the core's own ``neurochip.learning`` on the host, and
``refresh`` writes the new weights back into the processes.  Verification
speed only (lava.md §8): a handful of samples, not an epoch.
"""
from __future__ import annotations

from neurochip import learning
from neurochip.core import BatchResult
from neurochip.network import Network
from neurochip.backend import layer_traces

from .builder import LavaNet, StopOnExit


class LavaBackend(StopOnExit):
    """Runs batches sample by sample in one live :class:`LavaNet` per mode."""

    name = "lava"

    def __init__(self, net: Network, **build_kwargs):
        self.net = net
        self.build_kwargs = dict(build_kwargs)
        self.lava: LavaNet | None = None

    def _net_for(self, train: bool, record: bool) -> LavaNet:
        ln = self.lava
        if ln is not None and ln.train == bool(train) and (ln.probes_enabled or not record):
            return ln
        self.close()
        kw = dict(self.build_kwargs)
        kw["probes"] = bool(record or kw.get("probes", False))
        self.lava = LavaNet(self.net, train=bool(train), **kw)
        return self.lava

    def run(self, x_fp, labels=None, train=True, record=False) -> BatchResult:
        ln = self._net_for(train, record)
        res = ln.run(x_fp, labels)
        if not record:
            res.rec_spikes = None
            res.rec_state = None
        return res

    def refresh(self) -> None:
        """Write the host's updated weights and biases into the processes."""
        if self.lava is not None:
            self.lava.set_weights(self.net)

    def layer_traces(self, res: BatchResult) -> list[learning.LayerTraces]:
        """Canonical per-layer traces (index 0 = input), as the core's backend gives them."""
        return layer_traces(self.net, self.lava.core_layout, res)   # no max-pool in Lava

    def close(self) -> None:
        """Stop the live :class:`LavaNet` (idempotent); ``with`` calls it on exit."""
        if self.lava is not None:
            try:
                self.lava.stop()
            finally:
                self.lava = None

    stop = close

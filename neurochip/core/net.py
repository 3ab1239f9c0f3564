"""The host side of the core: :class:`CoreNet` (a network's tables, batches) and its results."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import numerics as nx
from ..bounds import int32_lanes_exact
from ..kinds import N_COUNTS
from ..network import Network
from .kernels import CoreTables, _run_batch
from .layout import CoreLayout, max_pool_slots
from .tables import constants_vector, neuron_biases, pack_index_maps, pack_weights


@dataclass
class BatchResult:
    """What one batch produced.  Arrays are per sample (axis 0).

    ``traces``: int32 ``(B, 2, n_all)`` trace registers after +beta / -beta
    (internal order); ``pool_idx``: int8 ``(B, 2, n_pool)`` max-pool argmax at
    the end of each nudged phase; ``s_free``: int64 ``(B, classes)`` output
    state after the free phase; ``predictions``: int64 ``(B,)``; ``counts``:
    int64 ``(B, 3, L+1, N_COUNTS)``; ``rec_spikes`` uint8 ``(B, steps, n_all)``
    and ``rec_state`` int64 ``(B, 3, 4, n_all)`` only when recording.
    """

    traces: np.ndarray
    pool_idx: np.ndarray
    s_free: np.ndarray
    predictions: np.ndarray
    counts: np.ndarray
    rec_spikes: np.ndarray | None = None
    rec_state: np.ndarray | None = None


class CoreNet:
    """A :class:`Network` prepared for the Numba kernels."""

    def __init__(self, net: Network):
        self.net = net
        self.layout = CoreLayout.build(net)
        self._maps = pack_index_maps(net, self.layout)
        self.pool_offs, self.n_pool = max_pool_slots(net)   # fixed by the architecture
        k, wd = net.constants(), net.widths
        #: hidden layers update in 32-bit lanes (core/lanes.py) when the bounds allow it
        self.lanes32 = int32_lanes_exact(int(k.lam_q), int(k.eps_q), int(k.one), wd.bias_bits,
                                         nx.REG_BITS)
        self.refresh()

    def refresh(self) -> None:
        """Re-derive the kernel tables after the integer parameters changed."""
        self.w_fwd, self.w_fb, self.w_fc_fwd, self.w_fc_fb = pack_weights(self.net, self.layout,
                                                                          self._maps)
        self.bias = neuron_biases(self.net, self.layout)

    def run(self, x_fp: np.ndarray, labels: np.ndarray | None = None, train: bool = True,
            record: bool = False) -> BatchResult:
        """Simulate a batch: free phase only (``train=False``) or all three.

        ``x_fp``: int64 ``(B, N0)`` quantised pixels in canonical (C,H,W) order;
        ``labels``: int ``(B,)`` (needed for training).
        """
        lay = self.layout
        n_batch = x_fp.shape[0]
        x_int = lay.to_internal(0, np.ascontiguousarray(x_fp, dtype=np.int64))
        if labels is None:
            labels = np.full(n_batch, -1, np.int64)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        n_phases = 3 if train else 1
        consts = constants_vector(self.net, n_phases)
        h = self.net.hyper
        n_steps = h.t1 + (2 * h.t2 if train else 0)
        n_l1 = len(lay.meta)
        traces = np.zeros((n_batch, 2, lay.n_all), np.int32)
        phase_idx = np.zeros((n_batch, 2, self.n_pool), np.int8)
        s_free = np.zeros((n_batch, lay.sizes[-1]), np.int64)
        counts = np.zeros((n_batch, 3, n_l1, N_COUNTS), np.int64)
        if record:
            rec_spk = np.zeros((n_batch, n_steps, lay.n_all), np.uint8)
            rec_state = np.zeros((n_batch, 3, 4, lay.n_all), np.int64)
        else:
            rec_spk = np.zeros((0, 1, 1), np.uint8)
            rec_state = np.zeros((0, 1, 1, 1), np.int64)
        reg_lo, reg_hi = nx.REG_MIN, nx.REG_MAX
        tables = CoreTables(lay.meta, lay.coords, lay.plan, consts, self.w_fwd, self.w_fb,
                            self.w_fc_fwd, self.w_fc_fb, self.bias, self.pool_offs, self.lanes32)
        _run_batch(tables, x_int, labels, reg_lo, reg_hi, np.zeros(lay.n_all, lay.acc_dtype),
                   np.zeros(lay.n_cacc, lay.acc_dtype), self.n_pool, traces, phase_idx, s_free,
                   counts, rec_spk, rec_state)
        preds = np.argmax(s_free, axis=1)
        return BatchResult(traces, phase_idx, s_free, preds, counts,
                           rec_spk if record else None, rec_state if record else None)

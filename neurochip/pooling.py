"""The 2x2 pooling's arithmetic, written once: the fused avg-pool kernel and its size.

With index-free average pooling (docs/numerics.md §4) a conv layer followed by
the 2x2 sum-pool is one stride-2 correlation with a ``(K+1) x (K+1)`` kernel,
each entry the sum of up to four weights; with max-pool the ``K x K`` kernel
is used per pool position.  The Lava mapping, the PyTorch mirror, the bounds
and the budget take the kernel and its size from here, the Lava mapping and the
NIR export the correlation's synapses (:func:`stride2_synapses`).
"""
from __future__ import annotations

import numpy as np


def kernel_side(kernel: int, is_max: bool) -> int:
    """Side of the kernel a spike's weights come from: ``K`` (max-pool) or ``K+1`` (fused avg-pool)."""
    return kernel if is_max else kernel + 1


def weights_per_entry(is_max: bool) -> int:
    """Weights summed into one kernel entry: 1 (max-pool) or 4 (fused avg-pool)."""
    return 1 if is_max else 4


def fused_kernel(w):
    """Conv then 2x2 *sum* as one kernel: ``wf[o, i, a, b] = sum_{m,n in {0,1}} w[o, i, a-m, b-n]``.

    ``w``: ``(Co, Ci, K, K)`` integer weights, a NumPy array (result int64) or a
    PyTorch tensor (result of its dtype and device); returns ``(Co, Ci, K+1, K+1)``.
    """
    co, ci, k, _ = w.shape
    if hasattr(w, "new_zeros"):                     # a torch tensor
        wf = w.new_zeros((co, ci, k + 1, k + 1))
    else:
        w = np.asarray(w, np.int64)
        wf = np.zeros((co, ci, k + 1, k + 1), np.int64)
    for m in (0, 1):
        for n in (0, 1):
            wf[:, :, m:m + k, n:n + k] += w
    return wf


def stride2_synapses(cin: int, hin: int, win: int, cout: int, hout: int, wout: int,
                     side: int, pad: int, stride: int = 2) -> tuple[np.ndarray, ...]:
    """Every synapse of the fused correlation from a ``(cin, hin, win)`` map to ``(cout, hout, wout)``.

    Output ``(o, r, c)`` reads input ``(i, y, x)`` through kernel entry
    ``wf[o, i, a, b]`` with ``y = stride*r + a - pad``, ``x = stride*c + b - pad``
    (``0 <= a, b < side``), where ``(y, x)`` lies inside the input map.  Returns
    the int64 index arrays ``(o, r, c, i, y, x, a, b)``, one entry per synapse;
    the callers lay them out in their own neuron orders.
    """
    o, r, c, i, a, b = np.meshgrid(np.arange(cout), np.arange(hout), np.arange(wout),
                                   np.arange(cin), np.arange(side), np.arange(side), indexing="ij")
    y = stride * r + a - pad
    x = stride * c + b - pad
    inside = (y >= 0) & (y < hin) & (x >= 0) & (x < win)
    return tuple(v[inside].astype(np.int64) for v in (o, r, c, i, y, x, a, b))

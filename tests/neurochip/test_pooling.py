"""neurochip.pooling: the fused (K+1)^2 kernel equals conv then 2x2 sum-pool."""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.pooling import fused_kernel, kernel_side, stride2_synapses, weights_per_entry


def _conv_then_sum_pool(x, w):
    """Valid stride-1 correlation ``(Co, H-K+1, W-K+1)``, then 2x2 sums (floor), by loops."""
    co, ci, k, _ = w.shape
    _, h, wd = x.shape
    conv = np.zeros((co, h - k + 1, wd - k + 1), np.int64)
    for o in range(co):
        for r in range(conv.shape[1]):
            for c in range(conv.shape[2]):
                conv[o, r, c] = int((x[:, r:r + k, c:c + k] * w[o]).sum())
    hp, wp = conv.shape[1] // 2, conv.shape[2] // 2
    return conv[:, :2 * hp, :2 * wp].reshape(co, hp, 2, wp, 2).sum(axis=(2, 4))


def _stride2(x, kern):
    co, ci, side, _ = kern.shape
    _, h, wd = x.shape
    hp, wp = (h - side) // 2 + 1, (wd - side) // 2 + 1
    out = np.zeros((co, hp, wp), np.int64)
    for r in range(hp):
        for c in range(wp):
            out[:, r, c] = np.tensordot(kern, x[:, 2 * r:2 * r + side, 2 * c:2 * c + side], 3)
    return out


@pytest.mark.parametrize("k, size", [(3, 8), (5, 12), (2, 7)])
def test_fused_kernel_is_conv_then_sum_pool(k, size):
    rng = np.random.default_rng(k)
    w = rng.integers(-128, 128, (4, 3, k, k))
    x = rng.integers(0, 2, (3, size, size))
    kern = fused_kernel(w)
    assert kern.shape == (4, 3, k + 1, k + 1) and kern.dtype == np.int64
    assert kernel_side(k, is_max=False) == k + 1 and kernel_side(k, is_max=True) == k
    np.testing.assert_array_equal(_stride2(x, kern), _conv_then_sum_pool(x, w))
    # every entry sums at most weights_per_entry weights
    assert np.abs(kern).max() <= weights_per_entry(False) * np.abs(w).max()
    assert weights_per_entry(True) == 1


def test_fused_kernel_of_a_torch_tensor_keeps_dtype_and_values():
    torch = pytest.importorskip("torch")
    w = np.arange(2 * 1 * 3 * 3).reshape(2, 1, 3, 3) - 9
    got = fused_kernel(torch.as_tensor(w, dtype=torch.float32))
    assert got.dtype == torch.float32 and tuple(got.shape) == (2, 1, 4, 4)
    np.testing.assert_array_equal(got.numpy(), fused_kernel(w))


@pytest.mark.parametrize("k, pad, size", [(3, 1, 8), (3, 0, 9), (2, 2, 5)])
def test_stride2_synapses_compute_padded_conv_then_sum_pool(k, pad, size):
    rng = np.random.default_rng(10 * k + pad)
    w = rng.integers(-8, 8, (2, 3, k, k))
    x = rng.integers(0, 2, (3, size, size))
    want = _conv_then_sum_pool(np.pad(x, ((0, 0), (pad, pad), (pad, pad))), w)
    cout, hout, wout = want.shape
    kern = fused_kernel(w)
    o, r, c, i, y, x_, a, b = stride2_synapses(3, size, size, cout, hout, wout, k + 1, pad)
    assert len({(*t,) for t in zip(o, r, c, i, y, x_)}) == len(o)   # one synapse per pair
    got = np.zeros(want.shape, np.int64)
    np.add.at(got, (o, r, c), kern[o, i, a, b] * x[i, y, x_])
    np.testing.assert_array_equal(got, want)

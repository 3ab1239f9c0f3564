"""neurochip.dataset: a dataset from the user's arrays, its checks, subsets and quantised pixels."""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.dataset import Dataset
from neurochip.errors import DataError

RNG = np.random.default_rng(0)
X8 = RNG.integers(0, 256, (6, 5, 5)).astype(np.uint8)        # (N, H, W): one channel
Y = np.array([0, 1, 2, 1, 0, 2])


def test_from_arrays_shapes_defaults_and_empty_test_split():
    d = Dataset.from_arrays(X8, Y)
    assert d.train_x.shape == (6, 1, 5, 5) and d.input_shape == (1, 5, 5)
    assert d.train_y.dtype == np.int64 and d.test_x.shape == (0, 1, 5, 5) and len(d.test_y) == 0
    assert (d.pixel_max, d.num_classes, d.name) == (255, 3, "arrays")
    small = Dataset.from_arrays(np.array([[[[0, 3], [7, 1]]]]), [4], pixel_max=None)
    assert small.pixel_max == 7 and small.num_classes == 5     # not uint8: the largest pixel
    d = Dataset.from_arrays(X8[:4], Y[:4], X8[4:], Y[4:], num_classes=10, name="mine")
    assert (len(d.train_y), len(d.test_y), d.num_classes, d.name) == (4, 2, 10, "mine")


@pytest.mark.parametrize("kwargs, message", [
    (dict(train_x=np.zeros((2, 5)), train_y=[0, 1]), r"training images must be \(N, C, H, W\)"),
    (dict(train_x=np.zeros((2, 3, 3)), train_y=[0, 1]), "must be integers in \\[0, pixel_max\\]"),
    (dict(train_x=X8, train_y=Y[:5]), "training labels must be 6 integers"),
    (dict(train_x=X8, train_y=Y.astype(float)), "training labels must be 6 integers"),
    (dict(train_x=X8, train_y=Y, test_x=np.zeros((1, 4, 4), np.uint8), test_y=[0]),
     r"test images \(1, 4, 4\) differ from training images \(1, 5, 5\)"),
    (dict(train_x=X8, train_y=Y, pixel_max=100), r"training pixels must be in \[0, 100\]"),
    (dict(train_x=X8, train_y=Y, num_classes=2), r"labels must be in \[0, 1\], got \[0, 2\]"),
    (dict(train_x=X8, train_y=-Y), r"labels must be in \[0, 0\], got \[-2, 0\]"),
])
def test_from_arrays_refuses_bad_arrays_in_one_line(kwargs, message):
    with pytest.raises(DataError, match=message):
        Dataset.from_arrays(**kwargs)


def test_subset_takes_the_first_samples():
    d = Dataset.from_arrays(X8[:4], Y[:4], X8[4:], Y[4:])
    s = d.subset(3, 1)
    np.testing.assert_array_equal(s.train_x, d.train_x[:3])
    np.testing.assert_array_equal(s.test_y, d.test_y[:1])
    assert (s.pixel_max, s.num_classes) == (d.pixel_max, d.num_classes)
    assert len(d.subset(None, None).train_y) == 4


def test_quantised_pixels_span_zero_to_full_scale():
    d = Dataset.from_arrays(np.array([[[0, 128, 255]]], np.uint8), [0])
    q = d.quantised(d.train_x, state_bits=8)
    assert q.shape == (1, 3) and q.dtype == np.int64
    assert q[0, 0] == 0 and q[0, 2] == 256 and 0 < q[0, 1] < 256

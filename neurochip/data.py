"""Datasets as uint8 images ``(N, C, H, W)`` with integer labels.

The default dataset is scikit-learn's bundled 8x8 handwritten digits (real
data, no download).  MNIST and Fashion-MNIST are read from IDX files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import numerics as nx
from .errors import DataError

DATASETS = ("digits", "mnist", "fashion-mnist")


@dataclass
class Dataset:
    name: str
    train_x: np.ndarray     # uint8 (N, C, H, W)
    train_y: np.ndarray     # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    pixel_max: int          # value that means full intensity (16 digits, 255 MNIST)
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.train_x.shape[1:])

    def quantised(self, x: np.ndarray, state_bits: int) -> np.ndarray:
        """Pixels as int64 state values in ``[0, 2**state_bits]``, flat (C,H,W)."""
        flat = x.reshape(len(x), -1).astype(np.int64)
        return nx.quantise_pixels.py_func(flat, self.pixel_max, 1 << state_bits)

    def subset(self, n_train: int | None, n_test: int | None) -> "Dataset":
        return Dataset(self.name, self.train_x[:n_train], self.train_y[:n_train],
                       self.test_x[:n_test], self.test_y[:n_test], self.pixel_max,
                       self.num_classes)


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits (1797 images, 8x8, values 0..16), fixed 80/20 split."""
    from sklearn.datasets import load_digits as _load
    d = _load()
    x = d.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    order = np.random.Generator(np.random.PCG64(split_seed)).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    te, tr = order[:n_test], order[n_test:]
    return Dataset("digits", x[tr], y[tr], x[te], y[te], 16)


def load_dataset(name: str, data_dir: str | None = None, download: bool = False) -> Dataset:
    """``download=True`` (the CLI's ``--download``) fetches missing IDX files."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        from .idx import load_idx_dataset
        return load_idx_dataset(name, data_dir, download=download)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")

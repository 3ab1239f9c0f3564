"""Datasets as uint8 images ``(N, C, H, W)`` with integer labels.

The default dataset is scikit-learn's bundled 8x8 handwritten digits (real
data, no download).  MNIST and Fashion-MNIST are read from IDX files.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .errors import DataError
from .idx import load_idx_dataset

DATASETS = ("digits", "mnist", "fashion-mnist")


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
        return load_idx_dataset(name, data_dir, download=download)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")

"""A dataset in memory: uint8 images ``(N, C, H, W)`` and int64 labels, split train/test."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import numerics as nx


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

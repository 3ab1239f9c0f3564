"""A dataset in memory: integer images ``(N, C, H, W)`` and int64 labels, split train/test."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import numerics as nx
from .errors import DataError


@dataclass
class Dataset:
    """Images and labels of a training and a test split.

    ``train_x``/``test_x``: unsigned integer pixels ``(N, C, H, W)`` in
    ``[0, pixel_max]`` (uint8 for the bundled datasets); ``train_y``/``test_y``:
    int64 ``(N,)`` class indices in ``[0, num_classes)``.
    """

    name: str
    train_x: np.ndarray     # uint8 (N, C, H, W)
    train_y: np.ndarray     # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    pixel_max: int          # value that means full intensity (16 digits, 255 MNIST)
    num_classes: int = 10

    @staticmethod
    def from_arrays(train_x, train_y, test_x=None, test_y=None, *, pixel_max: int | None = None,
                    num_classes: int | None = None, name: str = "arrays") -> "Dataset":
        """A dataset from your own arrays.

        Parameters
        ----------
        train_x, test_x : integer pixels ``(N, C, H, W)`` or ``(N, H, W)`` (one channel),
            values in ``[0, pixel_max]``.  ``test_x``/``test_y`` may be omitted (empty test split).
        train_y, test_y : integer labels ``(N,)`` in ``[0, num_classes)``.
        pixel_max : the value meaning full intensity (default: 255 for uint8, else the
            largest pixel of ``train_x``).
        num_classes : default ``max(label) + 1``.
        """
        def images(x, part):
            x = np.asarray(x)
            if x.ndim == 3:
                x = x[:, None]
            if x.ndim != 4:
                raise DataError(f"{name}: {part} images must be (N, C, H, W) or (N, H, W), "
                                f"got shape {x.shape}")
            if not np.issubdtype(x.dtype, np.integer):
                raise DataError(f"{name}: {part} images must be integers in [0, pixel_max] "
                                f"(got {x.dtype}); e.g. np.round(x * 255).astype(np.uint8)")
            return x

        def labels(y, n, part):
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != n or (len(y) and not np.issubdtype(y.dtype, np.integer)):
                raise DataError(f"{name}: {part} labels must be {n} integers, got shape {y.shape} "
                                f"of {y.dtype}")
            return y.astype(np.int64)

        tx = images(train_x, "training")
        ty = labels(train_y, len(tx), "training")
        if test_x is None:
            vx, vy = tx[:0], ty[:0]
        else:
            vx = images(test_x, "test")
            vy = labels(test_y, len(vx), "test")
        if vx.shape[1:] != tx.shape[1:]:
            raise DataError(f"{name}: test images {vx.shape[1:]} differ from training images {tx.shape[1:]}")
        if pixel_max is None:
            pixel_max = 255 if tx.dtype == np.uint8 else max(int(tx.max(initial=0)), 1)
        for part, x in (("training", tx), ("test", vx)):
            if x.size and (int(x.min()) < 0 or int(x.max()) > pixel_max):
                raise DataError(f"{name}: {part} pixels must be in [0, {pixel_max}], "
                                f"got [{int(x.min())}, {int(x.max())}]")
        every = np.concatenate([ty, vy])
        if num_classes is None:
            num_classes = int(every.max(initial=0)) + 1
        if every.size and (int(every.min()) < 0 or int(every.max()) >= num_classes):
            raise DataError(f"{name}: labels must be in [0, {num_classes - 1}], "
                            f"got [{int(every.min())}, {int(every.max())}]")
        return Dataset(name, tx, ty, vx, vy, int(pixel_max), int(num_classes))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.train_x.shape[1:])

    def quantised(self, x: np.ndarray, state_bits: int) -> np.ndarray:
        """Pixels as int64 state values in ``[0, 2**state_bits]``, flat (C,H,W)."""
        flat = x.reshape(len(x), -1).astype(np.int64)
        return nx.quantise_pixels.py_func(flat, self.pixel_max, 1 << state_bits)

    def subset(self, n_train: int | None, n_test: int | None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test samples (None: all)."""
        return Dataset(self.name, self.train_x[:n_train], self.train_y[:n_train],
                       self.test_x[:n_test], self.test_y[:n_test], self.pixel_max,
                       self.num_classes)

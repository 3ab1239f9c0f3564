"""Training-set augmentation: random whole-pixel translations of the input images.

Each training image of an epoch is moved by ``(dy, dx)`` pixels, each drawn
uniformly from ``-max_shift .. max_shift``; pixels moved in from outside the
image are 0 (the background of MNIST and Fashion-MNIST).  A translation only
moves integers, so it is exact on the quantised pixels and every backend sees
the same input.  The shifts of an epoch are a pure function of
``(seed, epoch)``, like the sample order (:func:`neurochip.trainer.epoch_order`):
a resumed run uses exactly the shifts of an uninterrupted one.  Validation
and test images are never moved.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import UserError

#: third word of the PCG64 seed of an epoch's shifts (the sample order uses ``[seed, epoch]``)
SHIFT_STREAM = 1


@dataclass(frozen=True)
class Augment:
    """``max_shift``: the largest translation in pixels, each axis (0: no augmentation)."""

    max_shift: int = 0

    def validate(self, image_hw: tuple[int, int] | None = None) -> "Augment":
        m = self.max_shift
        if isinstance(m, bool) or int(m) != m or m < 0:
            raise UserError(f"--augment-shift must be a non-negative integer, got {m}")
        if image_hw is not None and m >= min(image_hw):
            raise UserError(f"--augment-shift {m} would move a {image_hw[0]}x{image_hw[1]} image "
                            f"out of view; use less than {min(image_hw)} pixels")
        return self

    @property
    def active(self) -> bool:
        return self.max_shift > 0

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "Augment":
        """The augmentation of a checkpoint record (``None``: none, as before augmentation)."""
        return Augment(int((d or {}).get("max_shift", 0))).validate()


def epoch_shifts(seed: int, epoch: int, n: int, max_shift: int) -> np.ndarray:
    """int64 ``(n, 2)``: ``(dy, dx)`` in pixels of each of the ``n`` training samples
    (indexed like the training set) in 0-based ``epoch``."""
    rng = np.random.Generator(np.random.PCG64([seed, epoch, SHIFT_STREAM]))
    return rng.integers(-max_shift, max_shift + 1, size=(n, 2), dtype=np.int64)


def shift_images(x: np.ndarray, image_chw: tuple[int, int, int], shifts: np.ndarray) -> np.ndarray:
    """Images ``x`` (``(B, C*H*W)``, any integer dtype, C order) translated by ``shifts``
    (``(B, 2)``, ``(dy, dx)`` pixels; positive moves content down / right):
    ``out[b, c, y, x] = x[b, c, y - dy, x - dx]``, 0 where that falls outside the image."""
    c, h, w = image_chw
    imgs = x.reshape(len(x), c, h, w)
    out = np.zeros_like(imgs)
    for b, (dy, dx) in enumerate(np.asarray(shifts, dtype=np.int64)):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        out[b, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            imgs[b, :, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out.reshape(x.shape)

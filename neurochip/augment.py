"""Training-set augmentation: random left-right mirroring and whole-pixel translations
of the input images.

With ``flip``, each training image of an epoch is mirrored left-right with
probability 1/2; with ``max_shift``, it is then moved by ``(dy, dx)`` pixels,
each drawn uniformly from ``-max_shift .. max_shift``; pixels moved in from
outside the image are 0 (the background of MNIST and Fashion-MNIST).  Both only
move integers, so they are exact on the quantised pixels and every backend sees
the same input.  The mirrorings and shifts of an epoch are pure functions of
``(seed, epoch)``, like the sample order (:func:`neurochip.trainer.epoch_order`),
each from its own random stream: a resumed run uses exactly those of an
uninterrupted one, and turning mirroring on leaves the shifts as they were.
Validation and test images are never moved.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from .errors import UserError

#: third word of the PCG64 seed of an epoch's shifts (the sample order uses ``[seed, epoch]``)
SHIFT_STREAM = 1
#: third word of the PCG64 seed of an epoch's mirrorings
FLIP_STREAM = 2


class EpochMoves(NamedTuple):
    """What happens to each training sample (indexed like the training set) in one epoch."""

    flips: np.ndarray | None      #: bool ``(n,)``: mirrored left-right; None without ``flip``
    shifts: np.ndarray | None     #: int64 ``(n, 2)``: ``(dy, dx)`` pixels; None without a shift


@dataclass(frozen=True)
class Augment:
    """``max_shift``: the largest translation in pixels, each axis (0: none);
    ``flip``: mirror left-right with probability 1/2 (before the shift)."""

    max_shift: int = 0
    flip: bool = False

    def validate(self, image_hw: tuple[int, int] | None = None) -> "Augment":
        m = self.max_shift
        if isinstance(m, bool) or int(m) != m or m < 0:
            raise UserError(f"--augment-shift must be a non-negative integer, got {m}")
        if not isinstance(self.flip, bool):
            raise UserError(f"--augment-flip is on or off, got {self.flip!r}")
        if image_hw is not None and m >= min(image_hw):
            raise UserError(f"--augment-shift {m} would move a {image_hw[0]}x{image_hw[1]} image "
                            f"out of view; use less than {min(image_hw)} pixels")
        return self

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.flip

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "Augment":
        """The augmentation of a checkpoint record (``None``: none, as before augmentation)."""
        d = d or {}
        return Augment(int(d.get("max_shift", 0)), d.get("flip", False)).validate()

    def epoch_moves(self, seed: int, epoch: int, n: int) -> EpochMoves:
        """The mirrorings and shifts of the ``n`` training samples in 0-based ``epoch``."""
        return EpochMoves(epoch_flips(seed, epoch, n) if self.flip else None,
                          epoch_shifts(seed, epoch, n, self.max_shift) if self.max_shift else None)

    def apply(self, x: np.ndarray, image_chw: tuple[int, int, int], moves: EpochMoves,
              idx: np.ndarray) -> np.ndarray:
        """Images ``x`` (``(B, C*H*W)``, the samples ``idx`` of the training set) as the
        backend sees them in the epoch of ``moves``: mirrored, then shifted."""
        if moves.flips is not None:
            x = flip_images(x, image_chw, moves.flips[idx])
        if moves.shifts is not None:
            x = shift_images(x, image_chw, moves.shifts[idx])
        return x


def epoch_flips(seed: int, epoch: int, n: int) -> np.ndarray:
    """bool ``(n,)``: which of the ``n`` training samples are mirrored in 0-based ``epoch``
    (each with probability 1/2)."""
    rng = np.random.Generator(np.random.PCG64([seed, epoch, FLIP_STREAM]))
    return rng.integers(0, 2, size=n, dtype=np.int64) == 1


def epoch_shifts(seed: int, epoch: int, n: int, max_shift: int) -> np.ndarray:
    """int64 ``(n, 2)``: ``(dy, dx)`` in pixels of each of the ``n`` training samples
    (indexed like the training set) in 0-based ``epoch``."""
    rng = np.random.Generator(np.random.PCG64([seed, epoch, SHIFT_STREAM]))
    return rng.integers(-max_shift, max_shift + 1, size=(n, 2), dtype=np.int64)


def flip_images(x: np.ndarray, image_chw: tuple[int, int, int], flips: np.ndarray) -> np.ndarray:
    """Images ``x`` (``(B, C*H*W)``, any dtype, C order) with those where ``flips`` (bool
    ``(B,)``) is set mirrored left-right: ``out[b, c, y, x] = x[b, c, y, W - 1 - x]``."""
    c, h, w = image_chw
    imgs = x.reshape(len(x), c, h, w)
    out = np.where(np.asarray(flips, dtype=bool)[:, None, None, None], imgs[..., ::-1], imgs)
    return out.reshape(x.shape)


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

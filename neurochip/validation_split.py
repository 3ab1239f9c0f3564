"""A validation split carved from the training set, deterministic from the seed.

Every choice (learning rate, reading, checkpoint) is made on these images,
never on the test set, which the split leaves untouched.  The held-out images
are drawn by ``PCG64([seed, VALIDATION_STREAM])``; both parts keep the
dataset's original order, so the epoch order of the remaining training images
is :func:`neurochip.trainer.epoch_order` over them as for any training set.
"""
from __future__ import annotations

import numpy as np

from .errors import UserError
from .trainer import Callback

#: the random stream of the split, apart from the epoch orders' ``[seed, epoch]``
VALIDATION_STREAM = 0x76616C   # 'val'


def parse_split(text: str) -> float | int:
    """``--val-split`` value: an integer count (``5000``) or a fraction in (0, 1) (``0.1``)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"--val-split must be a sample count or a fraction in (0, 1), got {text!r}") \
            from None
    if value >= 1 and value == int(value):
        return int(value)
    if 0 < value < 1:
        return value
    raise UserError(f"--val-split must be a sample count >= 1 or a fraction in (0, 1), got {text!r}")


def split_count(split: float | int, n_train: int) -> int:
    """Number of held-out images for ``split`` (count or fraction) of ``n_train``.

    A fraction is rounded to the nearest count; at least one image stays for
    training and one goes to validation.
    """
    n = int(split) if isinstance(split, int) else int(round(split * n_train))
    if n < 1 or n >= n_train:
        raise UserError(f"--val-split {split} leaves {n_train - n} of the {n_train} training "
                        f"images for training and {n} for validation; both need at least one")
    return n


def split_indices(n_train: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: sorted int64 indices into the training set."""
    perm = np.random.Generator(np.random.PCG64([seed, VALIDATION_STREAM])).permutation(n_train)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class BestTracker:
    """The best-on-validation parameters of a run (the lowest validation error;
    the earliest epoch wins a tie).

    ``net``: a copy of the best :class:`~neurochip.network.Network` or None;
    ``record``: ``{"epoch", "val_error", "updates"}`` (JSON, for the checkpoint).
    """

    def __init__(self, net=None, record: dict | None = None):
        self.net = net
        self.record = dict(record) if record else None

    def consider(self, net, epoch: int, val_error: float) -> bool:
        """Keep ``net`` (copied) if ``val_error`` beats the best so far; True if it did."""
        if self.record is not None and not val_error < self.record["val_error"]:
            return False
        self.net = net.copy()
        self.record = {"epoch": int(epoch), "val_error": float(val_error), "updates": int(net.updates)}
        return True


class BestOnValidation(Callback):
    """A :func:`neurochip.trainer.fit` callback: after each epoch, ``tracker``
    considers the network with the record's ``val_error`` (``best_so_far`` in the
    record).  Put it before any checkpointing callback, so that a checkpoint
    written at the epoch's end holds the new best."""

    def __init__(self, tracker: BestTracker, net):
        self.tracker, self.net = tracker, net

    def on_epoch_end(self, state, record) -> None:
        record["best_so_far"] = self.tracker.consider(self.net, record["epoch"], record["val_error"])

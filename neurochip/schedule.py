"""Learning-rate schedules: one factor per epoch on top of the per-layer rates.

The factor multiplies every layer's rate (the per-layer ratios are kept)
before the rate becomes its integer mantissa and shift
(:meth:`neurochip.network.Network.constants`), so a schedule changes no rule,
only the constants of each epoch's updates.  A factor is a pure function of
``(epoch, epochs)``, which makes a resumed run use exactly the factors of an
uninterrupted one.  For the same reason a resumed run may change its
schedule or its number of epochs only where :func:`first_changed_epoch`
finds no epoch already trained whose factor would change (for example a
constant run of 20 epochs continued as ``step`` with ``step_epochs`` 20: the
first 20 factors stay 1).

* ``constant``: 1.
* ``step``: ``gamma ** (epoch // step_epochs)``.
* ``cosine``: ``min_factor + (1 - min_factor) * (1 + cos(pi * epoch / epochs)) / 2``
  (1 in the first epoch, approaching ``min_factor`` in the last).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import UserError

KINDS = ("constant", "step", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """``kind`` one of :data:`KINDS`; ``step_epochs`` (>= 1) and ``gamma`` (in
    (0, 1]) for ``step``; ``min_factor`` (in [0, 1]) for ``cosine``."""

    kind: str = "constant"
    step_epochs: int = 1
    gamma: float = 0.5
    min_factor: float = 0.0

    def validate(self) -> "LRSchedule":
        if self.kind not in KINDS:
            raise UserError(f"--lr-schedule must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if isinstance(self.step_epochs, bool) or int(self.step_epochs) != self.step_epochs \
                or self.step_epochs < 1:
            raise UserError(f"--lr-step-epochs must be a positive integer, got {self.step_epochs}")
        if not (math.isfinite(self.gamma) and 0.0 < self.gamma <= 1.0):
            raise UserError(f"--lr-gamma must be in (0, 1], got {self.gamma}")
        if not (math.isfinite(self.min_factor) and 0.0 <= self.min_factor <= 1.0):
            raise UserError(f"--lr-min-factor must be in [0, 1], got {self.min_factor}")
        return self

    def factor(self, epoch: int, epochs: int) -> float:
        """The rate factor of 0-based ``epoch`` in a run of ``epochs`` epochs."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (epoch // self.step_epochs)
        frac = epoch / max(epochs, 1)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "LRSchedule":
        """The schedule of a checkpoint record (``None``: constant, as before schedules)."""
        if not d:
            return LRSchedule()
        return LRSchedule(str(d["kind"]), int(d["step_epochs"]), float(d["gamma"]),
                          float(d["min_factor"])).validate()


def given_fields(args) -> dict:
    """The ``--lr-schedule``/``--lr-step-epochs``/``--lr-gamma``/``--lr-min-factor`` flags
    given on a command line (an argparse namespace; None = not given) as
    :class:`LRSchedule` fields, for ``dataclasses.replace``."""
    return {k: v for k, v in (("kind", args.lr_schedule), ("step_epochs", args.lr_step_epochs),
                              ("gamma", args.lr_gamma), ("min_factor", args.lr_min_factor))
            if v is not None}


def first_changed_epoch(old: LRSchedule, old_epochs: int, new: LRSchedule, new_epochs: int,
                        trained: int) -> int | None:
    """The first of the ``trained`` epochs (0-based, ``0 .. trained - 1``) whose factor
    differs between the plan ``(old, old_epochs)`` and ``(new, new_epochs)``; None if
    none does.  Factors are compared exactly: a continued run reproduces an
    uninterrupted run of the new plan bit for bit only if every factor it has
    already used is the new plan's.
    """
    for epoch in range(trained):
        if old.factor(epoch, old_epochs) != new.factor(epoch, new_epochs):
            return epoch
    return None

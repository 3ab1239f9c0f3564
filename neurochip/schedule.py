"""Learning-rate schedules: one factor per epoch on top of the per-layer rates.

The factor multiplies every layer's rate (the per-layer ratios are kept)
before the rate becomes its integer mantissa and shift
(:meth:`neurochip.network.Network.constants`), so a schedule changes no rule,
only the constants of each epoch's updates.  A factor is a pure function of
``(epoch, epochs)``, which makes a resumed run use exactly the factors of an
uninterrupted one.

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

"""A time limit for a whole `plait train` (trainer.time_limit, `--time-limit 10m`).

The clock starts when fit() is called, so reading the table and caching pretrained
features count. Training gets what is left, less a reserve for the final evaluation
and writing the run folder; Lightning's Timer (Trainer `max_time`) stops it at a step
boundary, and the best checkpoint so far is the model. The progress bar shows the
time left.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar

from plait.errors import ConfigError

# Kept back from training for the final evaluation, the report and the run folder.
RESERVE_SHARE, RESERVE_SECONDS = 0.05, 1.0
# A run with a text target decodes its validation and test rows with beam search at
# the end, which costs far more than a validation pass: captions on Flickr8k-1k overran
# a 10-minute limit by 8 % with the plain reserve (docs/benchmarks.md).
TEXT_RESERVE_SHARE = 0.15
# A run with candidates beside the network (plait.ensemble) keeps this much more for
# fitting them after the network: LightGBM and the linear probe, which stop at the
# reserve's start (members_deadline).
MEMBERS_SHARE = 0.15


def format_seconds(seconds: float) -> str:
    """90 → "1m30s", 600 → "10m", 42 → "42s"."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


@dataclass
class Budget:
    started: float  # time.monotonic() when the command began
    limit: float | None  # seconds, or None: no limit
    training_started: float = field(default=0.0)
    reserve_share: float = RESERVE_SHARE  # TEXT_RESERVE_SHARE for a run that generates text

    def left(self) -> float | None:
        return None if self.limit is None else self.limit - (time.monotonic() - self.started)

    def training_seconds(self) -> float | None:
        """Seconds training may take (None: no limit); a ConfigError if reading the
        data already used the budget."""
        self.training_started = time.monotonic()
        left = self.left()
        if left is None or self.limit is None:
            return None
        seconds = left - self.reserve_share * self.limit - RESERVE_SECONDS
        if seconds <= 0:
            spent = self.training_started - self.started
            raise ConfigError(
                f"--time-limit {format_seconds(self.limit)} was used up before training started "
                f"(reading the data and caching features took {spent:.0f} s); give at least "
                f"{format_seconds(math.ceil(2 * spent + 10))}"
            )
        return seconds

    def members_deadline(self) -> float | None:
        """time.monotonic() by which the candidates beside the network must stop, so the
        final evaluation keeps the plain reserve (None: no limit)."""
        if self.limit is None:
            return None
        return self.started + self.limit * (1 - RESERVE_SHARE) - RESERVE_SECONDS

    def too_short(self, trained: float, steps: int, steps_per_epoch: float) -> str:
        """Why a run stopped by the limit before its first validation: with the minimum
        limit that would let one pass (and its validation) finish."""
        assert self.limit is not None
        reading = self.training_started - self.started
        per_step = trained / max(steps, 1)
        epoch = per_step * (steps_per_epoch if math.isfinite(steps_per_epoch) else steps)
        need = (reading + 1.3 * epoch + RESERVE_SECONDS) / (1 - self.reserve_share)
        return (
            f"--time-limit {format_seconds(self.limit)} is too short to finish one pass over the data "
            f"({steps} training steps in {trained:.0f} s, after {reading:.0f} s reading the data); "
            f"give at least {format_seconds(math.ceil(need))}"
        )


class BudgetBar(TQDMProgressBar):
    """Lightning's progress bar, plus the time left of the command's budget."""

    def __init__(self, budget: Budget, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.budget = budget

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        left = self.budget.left()
        if left is not None:
            items["left"] = format_seconds(left)
        return items

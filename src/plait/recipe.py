"""Training recipes sized to the data: how much to hold out, how long to train, when to stop.

Trainer settings left at "auto" are set here from the number of rows, before the
split; config.yaml records the numbers chosen. A fixed number of epochs suits no
table: 10 epochs of 1,300 rows are about 200 optimiser steps, far from converged,
while 10 epochs of 40,000 rows are plenty. So the budget is counted in steps, and
early stopping (with the best checkpoint kept) ends the run once validation stops
improving; a time limit (trainer.time_limit) caps it from above.
"""

from __future__ import annotations

import math

from plait.config import TrainerConfig

# Optimiser steps a run may take before early stopping; `best` allows more.
TARGET_STEPS = {"fast": 3000, "medium": 3000, "best": 6000}
MIN_EPOCHS, MAX_EPOCHS = 10, 300
# A validation split of about this many rows where the data allows (at most a fifth
# of the training rows): fewer make early stopping follow noise.
VAL_ROWS = 200
# Early stopping waits this many optimiser steps (in whole epochs) without improvement.
PATIENCE_STEPS = 300
MIN_PATIENCE, MAX_PATIENCE = 3, 20


def val_fraction(rows: int) -> float:
    """The share of the training rows held out for validation: a tenth, raised towards
    VAL_ROWS rows on small tables (never above a fifth)."""
    held = max(0.1 * rows, min(VAL_ROWS, 0.2 * rows))
    return min(0.2, held / max(rows, 1))


def size_trainer(tc: TrainerConfig, rows: int, preset: str) -> TrainerConfig:
    """`tc` with every "auto" value set for a table of `rows` rows (validation and
    test rows included: a split column may hold some out, which only shortens epochs)."""
    fraction = val_fraction(rows) if tc.val_fraction == "auto" else tc.val_fraction
    train_rows = max(1, round(rows * (1 - fraction)))
    steps_per_epoch = math.ceil(train_rows / tc.batch_size)
    epochs = tc.epochs
    if epochs == "auto":
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS[preset] / steps_per_epoch)))
    patience = tc.patience
    if patience == "auto":
        patience = min(MAX_PATIENCE, max(MIN_PATIENCE, math.ceil(PATIENCE_STEPS / steps_per_epoch)))
    scheduler = tc.scheduler
    if scheduler == "auto":  # a run of unknown length anneals when it converges
        scheduler = "plateau" if tc.epochs == "auto" else "onecycle"
    return tc.model_copy(
        update={"val_fraction": fraction, "epochs": epochs, "patience": patience, "scheduler": scheduler}
    )

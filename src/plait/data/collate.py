"""The batch every model and system step receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Batch:
    """Inputs, presence masks and targets, keyed by column name.

    inputs[c]:  the encoder's input for column c (image (B, C, H, W) float, text (B, L)
                int64 ids, numeric (B, F) float, category (B,) int64)
    present[c]: (B,) bool, False where column c is missing for that row
    targets[t]: (B,) int64 class ids or float values; empty at prediction time
    rows:       (B,) int64 positions in the source table (keeps output order)
    """

    inputs: dict[str, Tensor]
    present: dict[str, Tensor]
    targets: dict[str, Tensor] = field(default_factory=dict)
    rows: Tensor | None = None

    def __len__(self) -> int:
        return len(next(iter(self.present.values())))


def identity_collate(batch: Batch) -> Batch:
    """The dataset already returns whole batches (`__getitems__`); nothing to stack."""
    return batch

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
    unusable:   (B,) bool, True where the row had an unusable cell (unreadable file, bad
                number) that is treated as missing; streamed tables carry it so the
                consumer can count such rows, whichever loader worker read them
    """

    inputs: dict[str, Tensor]
    present: dict[str, Tensor]
    targets: dict[str, Tensor] = field(default_factory=dict)
    rows: Tensor | None = None
    unusable: Tensor | None = None

    def __len__(self) -> int:
        return len(next(iter(self.present.values())))

    def pin_memory(self) -> Batch:
        """Page-locked copies (the DataLoader calls this with `pin_memory=True`)."""
        rows = self.rows.pin_memory() if self.rows is not None else None
        unusable = self.unusable.pin_memory() if self.unusable is not None else None
        return Batch(_pinned(self.inputs), _pinned(self.present), _pinned(self.targets), rows, unusable)


def _pinned(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.pin_memory() for k, v in tensors.items()}


def identity_collate(batch: Batch) -> Batch:
    """The dataset already returns whole batches (`__getitems__`); nothing to stack."""
    return batch

"""Multi-label head: one independent yes/no per label (sigmoid, binary cross-entropy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from plait.heads.base import HEADS, Head, mlp

# "balanced" weights each label's positives by (1 - f) / f, kept within these bounds so a
# label that is very rare (or absent) in training does not dominate the loss.
MIN_POS_WEIGHT, MAX_POS_WEIGHT = 1.0, 100.0


@HEADS.register(
    "multilabel", types=("multilabel",), data_params=("in_dim", "num_labels", "label_frequencies")
)
class MultilabelHead(Head):
    """MLP → C logits; binary cross-entropy per label (optional positive-class weights)."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        label_frequencies: Sequence[float] | None = None,
        hidden_dim: int = 128,
        dropout: float = 0.1,
        pos_weight: float | Literal["balanced"] | None = None,
    ) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, num_labels, dropout)
        # (C,) or None; rebuilt from the fitted target on load, so not saved with the weights.
        self.register_buffer(
            "pos_weight", _pos_weight(pos_weight, num_labels, label_frequencies), persistent=False
        )

    def forward(self, fused: Tensor) -> Tensor:
        return self.net(fused)  # (B, C) one logit per label

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(raw, target.float(), pos_weight=self.pos_weight)

    def activate(self, raw: Tensor) -> Tensor:
        return raw.sigmoid()  # (B, C) independent label probabilities


def _pos_weight(
    value: float | str | None, num_labels: int, frequencies: Sequence[float] | None
) -> Tensor | None:
    if value is None:
        return None
    if value == "balanced":
        if frequencies is None or len(frequencies) != num_labels:
            raise ValueError("pos_weight 'balanced' needs the label frequencies of the training rows")
        f = torch.tensor(frequencies, dtype=torch.float32)
        return ((1 - f) / f.clamp_min(1e-6)).clamp(MIN_POS_WEIGHT, MAX_POS_WEIGHT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"pos_weight must be a positive number, 'balanced' or null, got {value!r}")
    return torch.full((num_labels,), float(value))

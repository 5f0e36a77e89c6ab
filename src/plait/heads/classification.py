"""Single-label classification heads: multi-class (softmax) and binary (sigmoid)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from plait.heads.base import HEADS, Head, mlp


@HEADS.register("classification", types=("category",), data_params=("in_dim", "num_classes"))
class ClassificationHead(Head):
    """MLP → C logits; cross-entropy (with optional label smoothing)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        hidden_dim: int = 128,
        dropout: float = 0.1,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, num_classes, dropout)
        self.label_smoothing = label_smoothing

    def forward(self, fused: Tensor) -> Tensor:
        return self.net(fused)  # (B, C)

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(raw, target, label_smoothing=self.label_smoothing)

    def activate(self, raw: Tensor) -> Tensor:
        return raw.softmax(dim=-1)  # (B, C) class probabilities


@HEADS.register("binary", types=("binary",), data_params=("in_dim",))
class BinaryHead(Head):
    """MLP → one logit; binary cross-entropy (optional positive-class weight)."""

    def __init__(
        self, in_dim: int, hidden_dim: int = 128, dropout: float = 0.1, pos_weight: float | None = None
    ) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, 1, dropout)
        self.pos_weight = pos_weight

    def forward(self, fused: Tensor) -> Tensor:
        return self.net(fused).squeeze(-1)  # (B,)

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        weight = None if self.pos_weight is None else raw.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(raw, target.float(), pos_weight=weight)

    def activate(self, raw: Tensor) -> Tensor:
        return raw.sigmoid()  # (B,) probability of the positive class

"""Regression head: trains on standardised targets, predicts in the label's units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from plait.errors import ConfigError
from plait.heads.base import HEADS, Head, mlp


@HEADS.register("regression", types=("numeric",), data_params=("in_dim", "target_mean", "target_std"))
class RegressionHead(Head):
    """MLP → one value; mean-squared error (or Huber) on the standardised target."""

    def __init__(
        self,
        in_dim: int,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        hidden_dim: int = 128,
        dropout: float = 0.1,
        loss: str = "mse",
    ) -> None:
        super().__init__()
        if loss not in ("mse", "huber"):
            raise ConfigError(f"regression loss must be 'mse' or 'huber', got {loss!r}")
        self.net = mlp(in_dim, hidden_dim, 1, dropout)
        self.loss_name = loss
        # Buffers, so the scale travels with the weights.
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, fused: Tensor) -> Tensor:
        return self.net(fused).squeeze(-1)  # (B,) standardised

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        scaled = (target - self.target_mean) / self.target_std
        if self.loss_name == "huber":
            return F.huber_loss(raw, scaled)
        return F.mse_loss(raw, scaled)

    def activate(self, raw: Tensor) -> Tensor:
        return raw * self.target_std + self.target_mean  # (B,) in the label's units

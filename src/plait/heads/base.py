"""The head contract: fused vector → raw outputs, with the loss and the activation."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from plait.registry import Registry


class Head(nn.Module):
    """`forward(fused (B, D)) -> raw (B, …)`, `loss(raw, target) -> scalar`,
    `activate(raw) -> predictions` (probabilities or values in the label's units).

    A head with `wants_tokens` gets the whole `FusedOutput` (the inputs' tokens too)
    instead of the pooled vector.
    """

    wants_tokens: ClassVar[bool] = False

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def activate(self, raw: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_loss(self, fused: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Raw output and training loss in one call (heads with auxiliary losses override)."""
        raw = self(fused)
        return raw, self.loss(raw, target)


def mlp(in_dim: int, hidden_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """The fully-connected block every head uses: Linear → ReLU → Dropout → Linear."""
    if hidden_dim <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
    )


HEADS: Registry[Head] = Registry("head")

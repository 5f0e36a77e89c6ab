"""The fusion contract: encoder outputs + presence masks → one fused representation."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.registry import Registry


@dataclass
class FusedOutput:
    pooled: Tensor  # (B, out_dim)
    tokens: Tensor | None = None  # (B, T, D) for fusions that keep a sequence
    token_mask: Tensor | None = None  # (B, T) bool


class Fusion(nn.Module):
    """`forward(outputs, present)` with keys in sorted order; exposes `out_dim`.

    A row whose modality is absent (present False) must get the same result
    whatever that modality's placeholder holds.
    """

    out_dim: int

    def forward(
        self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]
    ) -> FusedOutput:  # pragma: no cover - abstract
        raise NotImplementedError


FUSIONS: Registry[Fusion] = Registry("fusion")

"""The fusion contract: encoder outputs + presence masks → one fused representation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.registry import Registry


@dataclass
class FusedOutput:
    pooled: Tensor  # (B, out_dim)
    tokens: Tensor | None = None  # (B, T, D) for fusions that keep a sequence
    token_mask: Tensor | None = None  # (B, T) bool
    # Set by the model: every input's encoder output and presence mask, for heads that
    # attend over tokens (text generation) rather than read the pooled vector.
    inputs: dict[str, EncoderOutput] | None = None
    present: dict[str, Tensor] | None = None


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


def masked_pooled(output: EncoderOutput, present: Tensor) -> Tensor:
    """(B, D) pooled features, zero where the modality is absent. where(), not a
    multiply: a NaN placeholder must not leak through 0 · NaN."""
    return torch.where(present.unsqueeze(1), output.pooled, 0.0)


def masked_tokens(output: EncoderOutput, present: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T, D) tokens zeroed where not real, and the (B, T) mask of real tokens of
    present rows."""
    mask = output.token_mask & present.unsqueeze(1)
    return torch.where(mask.unsqueeze(-1), output.tokens, 0.0), mask


def presence_flags(present: dict[str, Tensor], names: list[str], dtype: torch.dtype) -> Tensor:
    """(B, M) 0/1 flags in `names` order, so heads can tell absent from zero."""
    return torch.stack([present[n] for n in names], dim=1).to(dtype)


FUSIONS: Registry[Fusion] = Registry("fusion")

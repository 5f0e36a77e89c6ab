"""The encoder contract: every encoder returns tokens, a token mask and a pooled vector."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from plait.registry import Registry


@dataclass
class EncoderOutput:
    tokens: Tensor  # (B, T, D)
    token_mask: Tensor  # (B, T) bool, True for real tokens
    pooled: Tensor  # (B, D)


class Encoder(nn.Module):
    """Base class: subclasses set `out_dim` (D) and implement `forward(x) -> EncoderOutput`."""

    out_dim: int

    def forward(self, x: Tensor) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError


ENCODERS: Registry[Encoder] = Registry("encoder")

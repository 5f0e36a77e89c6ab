"""The encoder contract: every encoder returns tokens, a token mask and a pooled vector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from plait.registry import Registry


@dataclass
class EncoderOutput:
    tokens: Tensor  # (B, T, D)
    token_mask: Tensor  # (B, T) bool, True for real tokens
    pooled: Tensor  # (B, D)
    # Image encoders only: the feature maps of their stages, finest first, each
    # (B, C_l, H_l, W_l) with C_l = `feature_channels[l]`, and the (H, W) of the image
    # they were computed from (detection and grounding heads draw boxes on them).
    feature_maps: list[Tensor] | None = None
    image_size: tuple[int, int] | None = None


class Encoder(nn.Module):
    """Base class: subclasses set `out_dim` (D) and implement `forward(x) -> EncoderOutput`."""

    out_dim: int
    # Channels of each feature map the encoder returns (`EncoderOutput.feature_maps`);
    # empty for encoders with no spatial map (text, audio, tabular, cached features).
    feature_channels: Sequence[int] = ()

    def forward(self, x: Tensor) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError


ENCODERS: Registry[Encoder] = Registry("encoder")

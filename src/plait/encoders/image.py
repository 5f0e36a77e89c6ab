"""Image encoders trained from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput


@ENCODERS.register("cnn", types=("image",), data_params=("in_channels",))
class ConvEncoder(Encoder):
    """Small CNN: [conv3x3 → max-pool 2 → norm → ReLU] per stage, then a projection.

    Pooling before the norm and ReLU gives the same kind of features as the usual
    conv → norm → ReLU → pool at a quarter of the norm/activation cost, and the
    channels-last layout is what the CPU convolution kernels are fastest with.
    Tokens are the final feature map's cells (h·w of them); pooled is their mean.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (8, 16, 32),
        out_dim: int = 64,
        dropout: float = 0.0,
        norm: Literal["batch", "none"] = "batch",
        stem_stride: Literal[1, 2] = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(channels):
            # stem_stride 2: the first stage halves the size with its convolution's
            # stride instead of a max-pool (as ResNet/MobileNet stems), so its conv and
            # pool, the costliest of the network at full resolution, cost a quarter.
            strided = i == 0 and stem_stride == 2
            layers += [
                nn.Conv2d(prev, width, 3, stride=2 if strided else 1, padding=1, bias=norm == "none"),
                nn.Identity() if strided else nn.MaxPool2d(2),
                nn.BatchNorm2d(width) if norm == "batch" else nn.Identity(),
                nn.ReLU(inplace=True),
            ]
            prev = width
        self.features = nn.Sequential(*layers)
        self.feature_channels = tuple(channels)
        self.proj = nn.Sequential(nn.Linear(prev, out_dim), nn.ReLU(), nn.Dropout(dropout))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        feats = x.contiguous(memory_format=torch.channels_last)
        maps = []  # each stage's output (B, C_s, H / 2^(s+1), W / 2^(s+1))
        for i, layer in enumerate(self.features):
            feats = layer(feats)
            if i % 4 == 3:  # a stage's last module (its ReLU)
                maps.append(feats)
        tokens = self.proj(feats.flatten(2).transpose(1, 2))  # (B, h·w, D)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device)
        return EncoderOutput(tokens, mask, tokens.mean(dim=1), maps, (x.shape[-2], x.shape[-1]))

"""Video encoders: one network per frame, then a temporal head over the frames.

Input from VideoProcessor: (B, K, 1 + 3, H, W), channel 0 the real-frame mask; from
the cached pretrained path (FeatureProcessor over a video): (B, K, 1 + F) per-frame
features, column 0 the mask. Tokens run over time (one per sampled frame), so
attention fusions and the decoder can attend to when things happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput
from plait.encoders.image import ConvEncoder
from plait.encoders.pretrained.backbones import image_preprocessing
from plait.encoders.pretrained.encoder import PretrainedEncoder, uses_cache
from plait.errors import ConfigError

Temporal = Literal["mean", "attention", "conv", "transformer"]


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """(B, K, D), (B, K) → (B, D); a clip with no real frame pools to zeros."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)


class TemporalHead(nn.Module):
    """Per-frame vectors (B, K, D) + frame mask → tokens (B, K, D), pooled (B, D).

    `mean`: the frames' mean, blind to their order (a bag of frames); `attention`:
    a learned query attends over the frames, with learned position embeddings;
    `conv`: a 1-D convolution over time (kernel 3), then the mean; `transformer`: one
    small transformer layer with position embeddings, then the mean. Padded frames are
    zeroed before mixing and never pooled."""

    def __init__(self, dim: int, mode: Temporal = "conv", max_frames: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.mode = mode
        self.max_frames = max_frames
        self.position = (
            nn.Parameter(torch.zeros(max_frames, dim)) if mode in ("attention", "transformer") else None
        )
        if mode == "attention":
            self.query = nn.Parameter(torch.randn(dim) / dim**0.5)
        elif mode == "conv":
            self.mix = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(), nn.Dropout(dropout))
        elif mode == "transformer":
            heads = next(h for h in (4, 2, 1) if dim % h == 0)
            self.layer = nn.TransformerEncoderLayer(
                dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True
            )

    def forward(self, frames: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        k = frames.shape[1]
        if k > self.max_frames:
            raise ValueError(f"{k} frames per clip; this temporal head takes at most {self.max_frames}")
        tokens = frames * mask.unsqueeze(-1)  # (B, K, D), padded frames zero
        if self.position is not None:
            tokens = tokens + self.position[:k]
        if self.mode == "conv":
            tokens = self.mix(tokens.transpose(1, 2)).transpose(1, 2)
        elif self.mode == "transformer":
            # A clip without real frames (a missing cell) attends to its first slot, so
            # no row is all -inf (NaN); its output is masked out below.
            keep = mask.clone()
            keep[:, 0] = True
            tokens = self.layer(tokens, src_key_padding_mask=~keep)
        tokens = tokens * mask.unsqueeze(-1)
        if self.mode != "attention":
            return tokens, masked_mean(tokens, mask)
        scores = (tokens @ self.query).masked_fill(~mask, float("-inf"))  # (B, K)
        weights = torch.nan_to_num(scores.softmax(dim=1), nan=0.0)  # no real frame: zeros
        return tokens, (weights.unsqueeze(-1) * tokens).sum(1)


@ENCODERS.register("video_cnn", types=("video",))
class VideoConvEncoder(Encoder):
    """A small frame CNN shared across the sampled frames (the `cnn` image encoder's
    stages, pooled to a `grid` × `grid` map so where things are survives), then a
    temporal head (`temporal`: mean, attention, conv or transformer)."""

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64),
        out_dim: int = 128,
        grid: int = 4,
        temporal: Temporal = "conv",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.frame_cnn = ConvEncoder(3, channels, out_dim).features  # (N, C, h, w)
        self.grid = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Sequential(
            nn.Linear(channels[-1] * grid * grid, out_dim), nn.ReLU(), nn.Dropout(dropout)
        )
        self.temporal = TemporalHead(out_dim, temporal, dropout=dropout)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        b, k = x.shape[:2]
        mask = x[:, :, 0, 0, 0] > 0.5  # (B, K)
        frames = x[:, :, 1:].flatten(0, 1).contiguous(memory_format=torch.channels_last)  # (B·K, 3, H, W)
        feats = self.grid(self.frame_cnn(frames)).flatten(1)  # (B·K, C·g·g)
        per_frame = self.proj(feats).view(b, k, -1)  # (B, K, D)
        tokens, pooled = self.temporal(per_frame, mask)
        return EncoderOutput(tokens, mask, pooled)


_DATA = ("feature_dim", "pad_id")
# Per-frame backbone input: smaller than the backbone's 224 px, since every sampled
# frame of every clip is held decoded while its features are computed.
VIDEO_FRAME_SIZE = 112


@ENCODERS.register("video_pretrained", types=("video",), data_params=_DATA)
class VideoPretrainedEncoder(PretrainedEncoder):
    """EfficientNet-Lite0 per frame (frozen; features cached per frame), then a trainable
    projection and temporal head (`temporal`: mean, attention, conv or transformer)."""

    source, modality = "efficientnet_lite0", "video"

    def __init__(
        self,
        finetune: str = "frozen",
        last_n: int = 1,
        backbone_lr: float | None = None,
        cache: bool = True,
        out_dim: int = 128,
        dropout: float = 0.1,
        temporal: Temporal = "conv",
        feature_dim: int | None = None,
        pad_id: int = 0,
    ) -> None:
        super().__init__(
            finetune=finetune,
            last_n=last_n,
            backbone_lr=backbone_lr,
            cache=cache,
            out_dim=out_dim,
            dropout=dropout,
            feature_dim=feature_dim,
        )
        self.temporal = TemporalHead(out_dim, temporal, dropout=dropout)

    @classmethod
    def preprocessing(cls, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if params.get("out_dim", 128) is None:
            raise ConfigError("encoder video_pretrained needs an out_dim (the temporal head's width)")
        frames = {**image_preprocessing(cls.source, None), "size": VIDEO_FRAME_SIZE, "offsets": 1}
        base = {"kind": "video", "params": frames}
        if not uses_cache(params.get("finetune", "frozen"), params.get("cache", True), None):
            return "video", frames
        return "features", {"base": base, "backbone": {"name": cls.source, "path": None, "model": None}}

    def forward(self, x: Tensor) -> EncoderOutput:
        if self.backbone is None:  # cached per-frame features (B, K, 1 + F)
            mask = x[:, :, 0] > 0.5
            per_frame = self.proj(x[:, :, 1:])  # (B, K, D)
        else:  # frames (B, K, 1 + 3, H, W)
            b, k = x.shape[:2]
            mask = x[:, :, 0, 0, 0] > 0.5
            per_frame = self.proj(self.backbone(x[:, :, 1:].flatten(0, 1)).pooled).view(b, k, -1)
        tokens, pooled = self.temporal(per_frame, mask)
        return EncoderOutput(tokens, mask, pooled)

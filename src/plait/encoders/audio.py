"""Audio encoders over log-mel spectrograms from AudioProcessor.

Input x: (B, 1 + n_mels, T); row 0 is the real-frame mask, rows 1.. the log-mel.
Tokens run over time, so fusions and decoders can attend to when things happen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput


def _split(x: Tensor) -> tuple[Tensor, Tensor]:
    return x[:, 1:], x[:, 0] > 0.5  # (B, M, T) spectrogram, (B, T) frame mask


def _masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D), (B, T) → (B, D); a row with no real frame pools to zeros."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)


def _conv_stages(dims: int, in_channels: int, channels: Sequence[int], kernel_size: int) -> nn.Sequential:
    """[conv k → max-pool 2 → batch norm → ReLU] per stage, 1-D (over time) or 2-D."""
    conv, pool, norm = (
        (nn.Conv1d, nn.MaxPool1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d)
    )
    layers: list[nn.Module] = []
    for prev, width in zip([in_channels, *channels], channels, strict=False):
        layers += [
            conv(prev, width, kernel_size, padding=kernel_size // 2, bias=False),
            pool(2, ceil_mode=True),
            norm(width),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def _pooled_mask(frame_mask: Tensor, downsample: int, steps: int) -> Tensor:
    """(B, T) frame mask → (B, steps) token mask after pooling time by `downsample`:
    a token is real when any frame in its window is."""
    mask = F.max_pool1d(frame_mask.float().unsqueeze(1), downsample, ceil_mode=True)
    return mask.squeeze(1)[:, :steps] > 0


@ENCODERS.register("audio_cnn", types=("audio",), data_params=("n_mels",))
class AudioConvEncoder(Encoder):
    """2-D CNN over the spectrogram: [conv3x3 → max-pool 2 → batch norm → ReLU] per
    stage, then the frequency axis is averaged away and each remaining time step
    becomes a token; pooled is the mean over real time steps."""

    def __init__(
        self,
        n_mels: int = 64,
        channels: Sequence[int] = (16, 32, 64),
        out_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = _conv_stages(2, 1, channels, kernel_size=3)
        self.downsample = 2 ** len(channels)
        self.proj = nn.Sequential(nn.Linear(channels[-1], out_dim), nn.ReLU(), nn.Dropout(dropout))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        spec, frame_mask = _split(x)
        feats = self.features(spec.unsqueeze(1))  # (B, C, M', T')
        tokens = self.proj(feats.mean(dim=2).transpose(1, 2))  # (B, T', D)
        mask = _pooled_mask(frame_mask, self.downsample, tokens.shape[1])
        return EncoderOutput(tokens, mask, _masked_mean(tokens, mask))


@ENCODERS.register("audio_cnn1d", types=("audio",), data_params=("n_mels",))
class AudioConv1dEncoder(Encoder):
    """1-D CNN over time with the mel bands as channels: [conv k → max-pool 2 → batch
    norm → ReLU] per stage, then each remaining time step becomes a token; pooled is
    the mean over real time steps.

    It convolves along time only, so it costs a few per cent of `audio_cnn` (no
    frequency axis to slide over); it suits short clips whose spectral pattern is
    simple (spoken digits, keywords), where the 2-D CNN's extra work buys little."""

    def __init__(
        self,
        n_mels: int = 64,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        out_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = _conv_stages(1, n_mels, channels, kernel_size)
        self.downsample = 2 ** len(channels)
        self.proj = nn.Sequential(nn.Linear(channels[-1], out_dim), nn.ReLU(), nn.Dropout(dropout))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        spec, frame_mask = _split(x)
        tokens = self.proj(self.features(spec).transpose(1, 2))  # (B, M, T) → (B, T', D)
        mask = _pooled_mask(frame_mask, self.downsample, tokens.shape[1])
        return EncoderOutput(tokens, mask, _masked_mean(tokens, mask))


@ENCODERS.register("audio_gru", types=("audio",), data_params=("n_mels",))
class AudioRecurrentEncoder(Encoder):
    """1-D convolution over time (stride 2) → bidirectional GRU; pooled is the mean
    over real time steps."""

    def __init__(
        self, n_mels: int = 64, conv_dim: int = 64, hidden_dim: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(n_mels, conv_dim, 5, stride=2, padding=2), nn.ReLU())
        self.rnn = nn.GRU(conv_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.out_dim = 2 * hidden_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        spec, frame_mask = _split(x)
        feats = self.conv(spec).transpose(1, 2)  # (B, T', C)
        mask = frame_mask[:, ::2][:, : feats.shape[1]]  # (B, T'), stride 2
        # Zero the padded steps so the backward direction starts from silence.
        tokens, _ = self.rnn(feats * mask.unsqueeze(-1))
        tokens = self.drop(tokens)
        return EncoderOutput(tokens, mask, _masked_mean(tokens, mask))

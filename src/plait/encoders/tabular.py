"""Encoders for one numeric or one category column."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput


def _single_token(vector: Tensor) -> EncoderOutput:
    """(B, D) → one token per row."""
    mask = torch.ones(vector.shape[0], 1, dtype=torch.bool, device=vector.device)
    return EncoderOutput(vector.unsqueeze(1), mask, vector)


@ENCODERS.register("mlp", types=("numeric",), data_params=("in_features",))
class MLPEncoder(Encoder):
    """Numeric features (value, missing flag) → Linear → ReLU → Linear."""

    def __init__(self, in_features: int = 2, hidden_dim: int = 32, out_dim: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim), nn.ReLU()
        )
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        return _single_token(self.net(x))  # x: (B, F)


@ENCODERS.register("embedding", types=("category",), data_params=("num_embeddings",))
class CategoryEmbedding(Encoder):
    """Category id → learned embedding (id 0 is the shared unknown bucket)."""

    def __init__(self, num_embeddings: int, embed_dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_embeddings, embed_dim)
        self.out_dim = embed_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        return _single_token(self.embed(x))  # x: (B,)

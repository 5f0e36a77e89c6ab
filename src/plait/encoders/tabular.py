"""Encoders for one numeric or one category column."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput
from plait.layers import transformer


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


def _split_tabular(x: Tensor, num_numeric: int) -> tuple[Tensor, Tensor]:
    """(B, 2·n_num + n_cat) → numeric features (B, n_num, 2) and category ids (B, n_cat)."""
    numeric = x[:, : 2 * num_numeric].reshape(x.shape[0], num_numeric, 2)
    return numeric, x[:, 2 * num_numeric :].long()


@ENCODERS.register("tabular_mlp", types=("tabular",), data_params=("num_numeric", "category_sizes"))
class TabularMLP(Encoder):
    """Several numeric and category columns: category embeddings concatenated with the
    numeric features → MLP → one token."""

    def __init__(
        self,
        num_numeric: int,
        category_sizes: Sequence[int],
        embed_dim: int = 8,
        hidden_dim: int = 64,
        out_dim: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_numeric = num_numeric
        self.embeds = nn.ModuleList(nn.Embedding(n, embed_dim) for n in category_sizes)
        in_features = 2 * num_numeric + embed_dim * len(category_sizes)
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, out_dim),
            nn.ReLU(),
        )
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        numeric, ids = _split_tabular(x, self.num_numeric)
        parts = [numeric.flatten(1)] + [emb(ids[:, i]) for i, emb in enumerate(self.embeds)]
        return _single_token(self.net(torch.cat(parts, dim=1)))


@ENCODERS.register("ft_transformer", types=("tabular",), data_params=("num_numeric", "category_sizes"))
class FTTransformer(Encoder):
    """FT-Transformer (Gorishniy et al. 2021, "Revisiting Deep Learning Models for
    Tabular Data"): every column becomes one token (numeric: value·w_j + b_j plus a
    learned missing embedding; category: an embedding), a [CLS] token is prepended and
    a transformer encoder mixes them. Tokens are the columns; pooled is [CLS]."""

    def __init__(
        self,
        num_numeric: int,
        category_sizes: Sequence[int],
        dim: int = 32,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_numeric = num_numeric
        self.num_weight = nn.Parameter(torch.randn(num_numeric, dim) * 0.02)
        self.num_bias = nn.Parameter(torch.zeros(num_numeric, dim))
        self.num_missing = nn.Parameter(torch.zeros(num_numeric, dim))
        self.embeds = nn.ModuleList(nn.Embedding(n, dim) for n in category_sizes)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = transformer(dim, depth, heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> EncoderOutput:
        numeric, ids = _split_tabular(x, self.num_numeric)
        value, missing = numeric[..., :1], numeric[..., 1:]  # (B, n_num, 1) each
        tokens = [value * self.num_weight + self.num_bias + missing * self.num_missing]  # (B, n_num, D)
        tokens += [emb(ids[:, i]).unsqueeze(1) for i, emb in enumerate(self.embeds)]
        seq = torch.cat([self.cls.expand(x.shape[0], -1, -1), *tokens], dim=1)  # (B, 1 + cols, D)
        out = self.norm(self.encoder(seq))
        mask = torch.ones(out.shape[:2], dtype=torch.bool, device=x.device)[:, 1:]
        return EncoderOutput(out[:, 1:], mask, out[:, 0])

"""Small building blocks shared by encoders and fusions."""

from __future__ import annotations

from torch import nn


def transformer(dim: int, depth: int, heads: int, dropout: float) -> nn.TransformerEncoder:
    """A pre-norm transformer encoder (batch first, feed-forward 2·dim)."""
    layer = nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
    )
    # Nested tensors need post-norm layers; padding is handled by key masks instead.
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

"""Text encoders over token ids (0 = padding): recurrent and bag-of-embeddings."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput


class RNNEncoder(Encoder):
    """Embedding → (bi)GRU/LSTM. Tokens are per-step outputs; pooled is the final state
    of each direction, read at each row's true length (packed sequences)."""

    def __init__(
        self,
        vocab_size: int,
        cell: Literal["gru", "lstm"] = "gru",
        embed_dim: int = 64,
        hidden_dim: int = 64,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(
            embed_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, x: Tensor) -> EncoderOutput:
        mask = x != 0  # (B, L)
        # A missing or empty text gets length 1 (one padding step) so packing works;
        # fusion ignores that row through its presence mask.
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.embed(x), lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # (layers·dirs, B, H)
        dirs = 2 if self.rnn.bidirectional else 1
        pooled = torch.cat(list(h[-dirs:]), dim=-1)  # (B, dirs·H)
        tokens, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return EncoderOutput(self.drop(tokens), mask, self.drop(pooled))


@ENCODERS.register("gru", types=("text",), data_params=("vocab_size",))
def gru(
    vocab_size: int,
    embed_dim: int = 64,
    hidden_dim: int = 64,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
) -> RNNEncoder:
    """Word embeddings → bidirectional GRU (final states pooled)."""
    return RNNEncoder(vocab_size, "gru", embed_dim, hidden_dim, num_layers, bidirectional, dropout)


@ENCODERS.register("lstm", types=("text",), data_params=("vocab_size",))
def lstm(
    vocab_size: int,
    embed_dim: int = 64,
    hidden_dim: int = 64,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
) -> RNNEncoder:
    """Word embeddings → bidirectional LSTM (final states pooled)."""
    return RNNEncoder(vocab_size, "lstm", embed_dim, hidden_dim, num_layers, bidirectional, dropout)


@ENCODERS.register("bag", types=("text",), data_params=("vocab_size",))
class BagOfEmbeddings(Encoder):
    """Word embeddings averaged over the real tokens (fast, order-free baseline)."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.out_dim = embed_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        mask = x != 0  # (B, L)
        tokens = self.embed(x)  # (B, L, D); padding rows are zero vectors
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return EncoderOutput(tokens, mask, self.drop(pooled))

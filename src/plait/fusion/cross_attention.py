"""Pairwise cross-modal attention (MulT)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_tokens, presence_flags


class CrossBlock(nn.Module):
    """Target tokens attend to source tokens (pre-norm, residual, feed-forward)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )

    def forward(self, target: Tensor, source: Tensor, source_mask: Tensor) -> Tensor:
        kv = self.norm_kv(source)
        attended, _ = self.attn(
            self.norm_q(target), kv, kv, key_padding_mask=~source_mask, need_weights=False
        )
        x = target + attended
        return x + self.ff(self.norm_ff(x))


@FUSIONS.register("cross_attention", data_params=("in_dims",))
class CrossAttentionFusion(Fusion):
    """Multimodal Transformer (Tsai et al. 2019): for every ordered pair (target,
    source) a cross-attention block lets the target's tokens attend to the source's;
    each block's output is pooled over the target's real tokens and all are
    concatenated with presence flags. A block whose target or source is absent for a
    row contributes zeros for that row."""

    def __init__(self, in_dims: dict[str, int], dim: int = 32, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.pairs = [(t, s) for t in self.names for s in self.names if t != s]
        self.proj = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in in_dims.items()})
        self.blocks = nn.ModuleDict({f"{t}->{s}": CrossBlock(dim, heads, dropout) for t, s in self.pairs})
        self.out_dim = dim * len(self.pairs) + len(self.names)

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        seqs, masks = {}, {}
        for name in self.names:
            tokens, masks[name] = masked_tokens(outputs[name], present[name])  # (B, T_m, D_m), (B, T_m)
            seqs[name] = self.proj[name](tokens)  # (B, T_m, dim)
        parts = []
        for t, s in self.pairs:
            # A row with no real source token would give softmax over nothing (NaN):
            # let it see its first (zero) token, then zero the block's output for it.
            has_source = masks[s].any(1)  # (B,)
            source_mask = masks[s].clone()
            source_mask[:, 0] |= ~has_source
            out = self.blocks[f"{t}->{s}"](seqs[t], seqs[s], source_mask)  # (B, T_t, dim)
            weights = masks[t].unsqueeze(-1).to(out.dtype)
            pooled = (out * weights).sum(1) / weights.sum(1).clamp_min(1)  # (B, dim)
            parts.append(torch.where((has_source & masks[t].any(1)).unsqueeze(1), pooled, 0.0))
        flags = presence_flags(present, self.names, parts[0].dtype)
        return FusedOutput(torch.cat([*parts, flags], dim=1))

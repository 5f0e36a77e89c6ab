"""Transformer fusion over all modalities' tokens."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_tokens
from plait.layers import transformer


@FUSIONS.register("attention", data_params=("in_dims",))
class AttentionFusion(Fusion):
    """Every modality's tokens, projected to `dim` and tagged with a learned
    modality-type embedding, go through a transformer encoder together with a [CLS]
    token (as in single-stream multimodal transformers, e.g. VisualBERT, Li et al.
    2019; attention from Vaswani et al. 2017). Padded tokens and absent modalities are
    key-padding-masked; pooled is the [CLS] output, tokens the fused sequence."""

    def __init__(
        self, in_dims: dict[str, int], dim: int = 64, depth: int = 1, heads: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in in_dims.items()})
        self.type_embed = nn.Parameter(torch.randn(len(self.names), dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = transformer(dim, depth, heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        seqs, masks = [], []
        for i, name in enumerate(self.names):
            tokens, mask = masked_tokens(outputs[name], present[name])  # (B, T_m, D_m), (B, T_m)
            seqs.append(self.proj[name](tokens) + self.type_embed[i])
            masks.append(mask)
        b = seqs[0].shape[0]
        seq = torch.cat([self.cls.expand(b, -1, -1), *seqs], dim=1)  # (B, 1 + ΣT_m, dim)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=seq.device), *masks], dim=1)
        out = self.norm(self.encoder(seq, src_key_padding_mask=~mask))
        return FusedOutput(out[:, 0], out, mask)

"""Gated Multimodal Unit."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_pooled, presence_flags


@FUSIONS.register("gated", data_params=("in_dims",))
class GatedFusion(Fusion):
    """Gated Multimodal Unit (Arevalo et al. 2017), for any number of modalities: each
    modality gives h_m = tanh(W_m x_m); gates computed from all inputs (and presence
    flags) weigh them per feature with a softmax over the present modalities, so an
    absent modality gets weight 0."""

    def __init__(self, in_dims: dict[str, int], dim: int = 64) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.hidden = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in in_dims.items()})
        self.gate = nn.Linear(sum(in_dims.values()) + len(in_dims), dim * len(in_dims))
        self.dim = dim
        self.out_dim = dim

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        xs = [masked_pooled(outputs[n], present[n]) for n in self.names]  # (B, D_m) each
        flags = presence_flags(present, self.names, xs[0].dtype)  # (B, M)
        h = torch.stack([torch.tanh(self.hidden[n](x)) for n, x in zip(self.names, xs, strict=True)], 1)
        logits = self.gate(torch.cat([*xs, flags], dim=1)).view(-1, len(self.names), self.dim)  # (B, M, dim)
        logits = logits.masked_fill(~flags.bool().unsqueeze(2), float("-inf"))
        weights = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a row with nothing present → 0
        return FusedOutput((weights * h).sum(1))  # (B, dim)

"""FiLM: one modality's features modulated by the others."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_pooled, masked_tokens, presence_flags


@FUSIONS.register("film", data_params=("in_dims",))
class FiLMFusion(Fusion):
    """FiLM (Perez et al. 2018): the other modalities' pooled features (and presence
    flags) predict a per-feature scale γ and shift β that modulate every token of the
    `target` modality (default: the first in sorted order), which is then pooled over
    its real tokens. Output: [pooled modulated target; context; flags]."""

    def __init__(self, in_dims: dict[str, int], target: str | None = None, hidden_dim: int = 64) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        if target is not None and target not in in_dims:
            raise ValueError(f"film target {target!r} is not an input; inputs: {', '.join(self.names)}")
        self.target = target or self.names[0]
        self.context = [n for n in self.names if n != self.target]
        d_target = in_dims[self.target]
        d_context = sum(in_dims[n] for n in self.context) + len(self.names)
        self.film = nn.Sequential(
            nn.Linear(d_context, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 2 * d_target)
        )
        self.out_dim = d_target + d_context

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        flags = presence_flags(present, self.names, outputs[self.target].pooled.dtype)  # (B, M)
        context = torch.cat([*(masked_pooled(outputs[n], present[n]) for n in self.context), flags], dim=1)
        gamma, beta = self.film(context).chunk(2, dim=1)  # (B, D_t) each
        tokens, mask = masked_tokens(outputs[self.target], present[self.target])  # (B, T, D_t)
        modulated = (1 + gamma.unsqueeze(1)) * tokens + beta.unsqueeze(1)
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (modulated * weights).sum(1) / weights.sum(1).clamp_min(1)  # (B, D_t); 0 if absent
        return FusedOutput(torch.cat([pooled, context], dim=1))

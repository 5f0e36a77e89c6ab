"""Contrastive retrieval head: one projection per tower into a shared, L2-normalised
space, trained with CLIP's symmetric InfoNCE loss (Radford et al. 2021) and a
learnable temperature.

Towers are input columns (image, text, audio). Every pair of towers is a contrastive
task; a row missing one of a pair's columns sits that pair out. Several positives per
item are supported: rows showing the same item (the same image file with five
captions, the same caption text) are positives of each other, and the softmax target
spreads evenly over them (with one positive per row this is exactly CLIP's loss).
"""

from __future__ import annotations

import math
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.fusion.base import FusedOutput
from plait.heads.base import HEADS, Head, mlp


def info_nce(za: Tensor, zb: Tensor, positive: Tensor, scale: Tensor | float) -> Tensor:
    """Symmetric InfoNCE between paired rows.

    za, zb:   (M, D) L2-normalised embeddings of the two towers, row i paired with row i
    positive: (M, M) bool, True where za[i] and zb[j] show the same item (diagonal True)
    scale:    1 / temperature
    Each row's target is uniform over its positives; the loss is the mean of the
    a→b and b→a cross-entropies.
    """
    logits = scale * za @ zb.T  # (M, M)
    pos = positive.float()
    loss_ab = F.cross_entropy(logits, pos / pos.sum(1, keepdim=True))
    loss_ba = F.cross_entropy(logits.T, pos.T / pos.T.sum(1, keepdim=True))
    return (loss_ab + loss_ba) / 2


@HEADS.register("contrastive", types=("retrieval",), data_params=("token_dims", "towers"))
class ContrastiveHead(Head):
    """Towers' pooled features → (B, n_towers, dim) unit vectors (NaN where absent)."""

    wants_tokens = True  # reads each tower's own encoder output, not the fused vector

    def __init__(
        self,
        token_dims: dict[str, int],
        towers: list[str],
        dim: int = 256,
        hidden_dim: int = 0,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_scale: float = 100.0,
    ) -> None:
        super().__init__()
        unknown = [t for t in towers if t not in token_dims]
        if unknown:
            raise ConfigError(
                f"retrieval column(s) {', '.join(unknown)} are not model inputs; "
                f"inputs: {', '.join(token_dims)}"
            )
        if not 0 < temperature <= 1:
            raise ConfigError(f"temperature must lie in (0, 1], got {temperature}")
        self.towers = list(towers)
        # hidden_dim 0: a linear projection, as CLIP; > 0: a two-layer MLP.
        self.proj = nn.ModuleDict({t: mlp(token_dims[t], hidden_dim, dim, 0.0) for t in self.towers})
        # CLIP learns log(1 / T) and clips the scale at 100 so training stays stable.
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1 / temperature)), requires_grad=learn_temperature
        )
        self.max_scale = max_scale

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def embed(self, tower: str, pooled: Tensor) -> Tensor:
        """(B, D_tower) encoder features → (B, dim) unit vectors."""
        return F.normalize(self.proj[tower](pooled), dim=-1)

    def _embed_all(self, fused: FusedOutput) -> tuple[Tensor, Tensor]:
        assert fused.inputs is not None and fused.present is not None
        z = torch.stack([self.embed(t, fused.inputs[t].pooled) for t in self.towers], dim=1)  # (B, n, dim)
        present = torch.stack([fused.present[t] for t in self.towers], dim=1)  # (B, n)
        return z, present

    def forward(self, fused: FusedOutput) -> Tensor:  # type: ignore[override]
        z, present = self._embed_all(fused)
        return torch.where(present.unsqueeze(-1), z, torch.nan)  # (B, n, dim)

    def forward_loss(self, fused: FusedOutput, target: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """target: (B, n) item ids per tower (equal ids = the same item; -1 = empty)."""
        z, present = self._embed_all(fused)
        losses = []
        for a, b in combinations(range(len(self.towers)), 2):
            rows = present[:, a] & present[:, b]
            if rows.sum() < 2:  # nothing to contrast against
                continue
            ga, gb = target[rows, a], target[rows, b]
            positive = (ga[:, None] == ga[None, :]) | (gb[:, None] == gb[None, :])  # (M, M)
            losses.append(info_nce(z[rows, a], z[rows, b], positive, self.scale))
        loss = torch.stack(losses).mean() if losses else z.sum() * 0.0
        return torch.where(present.unsqueeze(-1), z, torch.nan).detach(), loss

    def activate(self, raw: Tensor) -> Tensor:
        return raw  # the embeddings themselves

"""Tensor Fusion Network and its low-rank version."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_pooled


def _with_one(x: Tensor) -> Tensor:
    """(B, d) → (B, d + 1): [h; 1], so products keep every lower-order term."""
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)


@FUSIONS.register("tensor", data_params=("in_dims",))
class TensorFusion(Fusion):
    """Tensor Fusion Network (Zadeh et al. 2017): the outer product of the [h_m; 1]
    vectors holds every unimodal, bimodal, …, M-modal interaction. Each modality is
    first projected to `dim` (the product has (dim + 1)^M entries), then the product
    is mapped to `out_dim`. An absent modality contributes [0; 1]: only its
    interaction terms vanish."""

    def __init__(
        self, in_dims: dict[str, int], dim: int = 8, out_dim: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in in_dims.items()})
        size = (dim + 1) ** len(self.names)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(size, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        product: Tensor | None = None
        for name in self.names:
            h = self.proj[name](masked_pooled(outputs[name], present[name]))  # (B, dim)
            z = _with_one(torch.where(present[name].unsqueeze(1), h, 0.0))
            # (B, P) ⊗ (B, dim + 1) → (B, P · (dim + 1))
            product = z if product is None else (product.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        return FusedOutput(self.out(product))


@FUSIONS.register("low_rank_tensor", data_params=("in_dims",))
class LowRankTensorFusion(Fusion):
    """Low-rank Multimodal Fusion (Liu et al. 2018): the same multiplicative
    interactions as TFN with the weight tensor factorised into `rank` modality-specific
    factors, so the cost is linear in the number of modalities."""

    def __init__(self, in_dims: dict[str, int], rank: int = 4, out_dim: int = 64) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.factors = nn.ParameterDict(
            {n: nn.Parameter(torch.randn(rank, d + 1, out_dim) * (d + 1) ** -0.5) for n, d in in_dims.items()}
        )
        self.rank_weights = nn.Parameter(torch.full((1, rank), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.out_dim = out_dim

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        fused: Tensor | None = None
        for name in self.names:
            z = _with_one(masked_pooled(outputs[name], present[name]))  # (B, d + 1)
            part = torch.einsum("bd,rdo->rbo", z, self.factors[name])  # (rank, B, out)
            fused = part if fused is None else fused * part
        out = torch.einsum("xr,rbo->bo", self.rank_weights, fused) + self.bias  # type: ignore[arg-type]
        return FusedOutput(out)

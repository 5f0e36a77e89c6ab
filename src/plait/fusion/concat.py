"""Feature-level (early) fusion by concatenation."""

from __future__ import annotations

import torch
from torch import Tensor

from plait.encoders.base import EncoderOutput
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_pooled, presence_flags


@FUSIONS.register("concat", data_params=("in_dims",))
class ConcatFusion(Fusion):
    """Concatenate pooled features [h_1 · p_1; …; h_M · p_M; p_1 … p_M].

    A missing modality contributes zeros, and its presence flag is appended so the
    head can tell "absent" from "present with a zero feature".
    """

    def __init__(self, in_dims: dict[str, int]) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.out_dim = sum(in_dims.values()) + len(in_dims)

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        parts = [masked_pooled(outputs[n], present[n]) for n in self.names]  # (B, D_m) each
        flags = presence_flags(present, self.names, parts[0].dtype)  # (B, M)
        return FusedOutput(torch.cat([*parts, flags], dim=1))  # (B, ΣD_m + M)

"""MultimodalModel: encoders → fusion → heads. A plain nn.Module, built by build.py."""

from __future__ import annotations

from torch import Tensor, nn

from plait.encoders.base import Encoder, EncoderOutput
from plait.fusion.base import FusedOutput, Fusion
from plait.heads.base import Head


class MultimodalModel(nn.Module):
    def __init__(
        self,
        encoders: dict[str, Encoder],
        inputs: dict[str, str],
        fusion: Fusion,
        heads: dict[str, Head],
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)  # group → encoder (shared by its inputs)
        self.inputs = dict(inputs)  # input key (column, or tabular group) → group
        self.fusion = fusion
        self.heads = nn.ModuleDict(heads)  # target column → head

    def encode(self, inputs: dict[str, Tensor]) -> dict[str, EncoderOutput]:
        """Each input through its group's encoder; a tied encoder runs once per column."""
        return {key: self.encoders[self.inputs[key]](inputs[key]) for key in sorted(self.inputs)}

    def fuse(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> FusedOutput:
        return self.fusion(self.encode(inputs), present)

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw head outputs per target (logits, or standardised values)."""
        fused = self.fuse(inputs, present).pooled  # (B, D)
        return {name: head(fused) for name, head in self.heads.items()}

    def predict(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Activated outputs per target: probabilities, or values in the label's units."""
        raw = self(inputs, present)
        return {name: self.heads[name].activate(out) for name, out in raw.items()}

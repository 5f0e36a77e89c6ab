"""MultimodalModel: encoders → fusion → heads. A plain nn.Module, built by build.py."""

from __future__ import annotations

import dataclasses

import torch
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
        learned_missing: bool = False,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)  # group → encoder (shared by its inputs)
        self.inputs = dict(inputs)  # input key (column, or tabular group) → group
        self.fusion = fusion
        self.heads = nn.ModuleDict(heads)  # target column → head
        # Optional learned "missing" embedding per input: an absent input is shown to the
        # fusion as this one learned token instead of being masked out.
        self.missing = (
            nn.ParameterDict({k: nn.Parameter(torch.zeros(encoders[g].out_dim)) for k, g in inputs.items()})
            if learned_missing
            else None
        )

    def encode(self, inputs: dict[str, Tensor]) -> dict[str, EncoderOutput]:
        """Each input through its group's encoder; a tied encoder runs once per column."""
        return {key: self.encoders[self.inputs[key]](inputs[key]) for key in sorted(self.inputs)}

    def fuse(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> FusedOutput:
        outputs = self.encode(inputs)
        if self.missing is not None:
            outputs = {k: self._fill_missing(k, out, present[k]) for k, out in outputs.items()}
            present = {k: torch.ones_like(p) for k, p in present.items()}
        fused = self.fusion(outputs, present)
        fused.inputs, fused.present = outputs, present
        return fused

    @staticmethod
    def head_input(head: Head, fused: FusedOutput) -> Tensor | FusedOutput:
        return fused if head.wants_tokens else fused.pooled

    def _fill_missing(self, key: str, out: EncoderOutput, present: Tensor) -> EncoderOutput:
        """Absent rows → one real token holding the learned embedding (B, T, D)."""
        emb = self.missing[key]  # type: ignore[index]
        absent = ~present
        tokens = torch.where(absent[:, None, None], emb, out.tokens)
        first = torch.zeros_like(out.token_mask)
        first[:, 0] = True
        mask = torch.where(absent[:, None], first, out.token_mask)
        pooled = torch.where(absent[:, None], emb, out.pooled)
        return dataclasses.replace(out, tokens=tokens, token_mask=mask, pooled=pooled)

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw head outputs per target (logits, standardised values, or generated ids)."""
        fused = self.fuse(inputs, present)
        return {name: head(self.head_input(head, fused)) for name, head in self.heads.items()}

    def predict(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Activated outputs per target: probabilities, or values in the label's units."""
        raw = self(inputs, present)
        return {name: self.heads[name].activate(out) for name, out in raw.items()}

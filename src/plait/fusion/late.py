"""Model-level (late, decision) fusion: one head per modality, predictions combined.

Late fusion trains a separate predictor on each modality and combines their
decisions (Snoek et al. 2005, "Early versus late fusion in semantic video
analysis"; the "LF" baseline of MultiBench, Liang et al. 2021). Here every
modality gets its own copy of each task head; the copies are trained jointly,
each with an auxiliary loss on the rows where its modality is present, and their
raw outputs (logits, or standardised values) are combined by

- ``mean``: the average over the row's present modalities;
- ``learned``: a softmax-weighted average with one learned weight per modality
  (renormalised over the present ones);
- ``stacking``: a linear layer over all modalities' outputs and presence flags,
  initialised to the mean over the present ones (Wolpert 1992, stacked generalisation).

Combining in raw space (a product of experts for probabilities) works the same
for every head: multi-class logits, a binary logit or a regression value.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.errors import ConfigError
from plait.fusion.base import FUSIONS, FusedOutput, Fusion, masked_pooled, presence_flags
from plait.heads.base import Head

COMBINE = ("mean", "learned", "stacking")


@FUSIONS.register("late", data_params=("in_dims",))
class LateFusion(Fusion):
    """Passes each modality's pooled features through, [h_1 · p_1; …; h_M · p_M; p_1 … p_M],
    for `LateHead`s (built in place of the task heads) to predict from one by one."""

    def __init__(self, in_dims: dict[str, int], combine: str = "mean", aux_weight: float = 0.5) -> None:
        super().__init__()
        if combine not in COMBINE:
            raise ConfigError(f"late fusion combine must be one of {', '.join(COMBINE)}, got {combine!r}")
        if aux_weight < 0:
            raise ConfigError(f"late fusion aux_weight must be ≥ 0, got {aux_weight}")
        self.dims = {n: in_dims[n] for n in sorted(in_dims)}
        self.combine = combine
        self.aux_weight = aux_weight
        self.out_dim = sum(self.dims.values()) + len(self.dims)

    def forward(self, outputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> FusedOutput:
        names = list(self.dims)
        parts = [masked_pooled(outputs[n], present[n]) for n in names]  # (B, D_m) each
        flags = presence_flags(present, names, parts[0].dtype)  # (B, M)
        return FusedOutput(torch.cat([*parts, flags], dim=1))  # (B, ΣD_m + M)

    def wrap(self, heads: dict[str, Head]) -> LateHead:
        """One target's per-modality heads (input key → head) → the combined head."""
        return LateHead(heads, self.dims, self.combine, self.aux_weight)


class LateHead(Head):
    """A task head per modality over `LateFusion`'s output, combined into one.

    `forward` returns the combined raw output, so a `LateHead` is used like any
    head; `parts` also returns each modality's own output for the auxiliary losses.
    """

    def __init__(self, heads: dict[str, Head], dims: dict[str, int], combine: str, aux_weight: float) -> None:
        super().__init__()
        self.dims = dict(dims)
        self.aux_weight = aux_weight
        self.heads = nn.ModuleDict({n: heads[n] for n in self.dims})
        self.combine = combine
        m = len(self.dims)
        if combine == "learned":
            self.logits = nn.Parameter(torch.zeros(m))  # equal weights at the start
        elif combine == "stacking":
            first = next(iter(self.heads.values())).eval()
            with torch.no_grad():  # the output size (classes, or 1) from a probe row
                k = first(torch.zeros(1, self.dims[next(iter(self.dims))])).reshape(1, -1).shape[1]
            first.train()
            self.stack = nn.Linear(m * k + m, k)
            with torch.no_grad():  # start as the mean of the modalities' outputs
                self.stack.weight.zero_()
                self.stack.bias.zero_()
                for i in range(m):
                    self.stack.weight[:, i * k : (i + 1) * k] = torch.eye(k) / m

    def parts(self, fused: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Each modality's raw output (B, …) and the (B, M) presence flags."""
        sizes = [*self.dims.values(), len(self.dims)]
        *features, flags = fused.split(sizes, dim=1)
        raws = {n: self.heads[n](h) for n, h in zip(self.dims, features, strict=True)}
        return raws, flags

    def combined(self, raws: dict[str, Tensor], flags: Tensor) -> Tensor:
        stacked = torch.stack([raws[n] for n in self.dims], dim=1)  # (B, M, …)
        present = flags.bool()  # (B, M)
        shape = (*present.shape, *([1] * (stacked.dim() - 2)))  # broadcast over classes
        stacked = torch.where(present.view(shape), stacked, 0.0)  # absent outputs never leak
        if self.combine == "stacking":
            # Outputs scaled by M / (number present), as inverted dropout does, so the
            # mean-initialised layer starts as the mean over the present modalities.
            b, m = present.shape
            scale = m / flags.sum(dim=1).clamp_min(1.0)  # (B,)
            scaled = stacked.reshape(b, -1) * scale.unsqueeze(1)  # (B, M·K)
            return self.stack(torch.cat([scaled, flags], dim=1)).reshape(stacked[:, 0].shape)
        if self.combine == "learned":
            # -1e9, not -inf: a row with nothing present gets finite (uniform) weights over
            # all-zero outputs instead of NaN.
            weights = self.logits.expand_as(flags).masked_fill(~present, -1e9).softmax(dim=1)
        else:
            weights = flags / flags.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, M)
        return (stacked * weights.view(shape)).sum(dim=1)

    def forward(self, fused: Tensor) -> Tensor:
        return self.combined(*self.parts(fused))

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        return next(iter(self.heads.values())).loss(raw, target)

    def forward_loss(self, fused: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Combined output, and its loss plus `aux_weight` × the per-modality losses."""
        raws, flags = self.parts(fused)
        raw = self.combined(raws, flags)
        loss = self.loss(raw, target)
        if self.aux_weight:
            loss = loss + self.aux_weight * self.aux_loss(raws, flags, target)
        return raw, loss

    def aux_loss(self, raws: dict[str, Tensor], flags: Tensor, target: Tensor) -> Tensor:
        """Mean over modalities of each head's loss on the rows where it is present."""
        losses = []
        for i, (name, raw) in enumerate(raws.items()):
            rows = flags[:, i].bool()
            if rows.any():
                losses.append(self.heads[name].loss(raw[rows], target[rows]))
        return torch.stack(losses).mean() if losses else flags.new_zeros(())

    def activate(self, raw: Tensor) -> Tensor:
        return next(iter(self.heads.values())).activate(raw)

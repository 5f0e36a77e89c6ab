"""Grounding head: the one box the row's other inputs (a phrase) point at.

Every location of one pyramid level (conditioned on the phrase, heads/conditioning.py)
scores how likely it is the centre of the wanted object and predicts its distances to
the object's four sides, as FCOS does. The answer is the box of the best-scoring
location. Training: cross-entropy over locations towards the one holding the true
box's centre, plus GIoU and L1 losses on that location's box
(torchvision.ops.generalized_box_iou_loss).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import generalized_box_iou_loss

from plait.fusion.base import FusedOutput
from plait.heads.base import HEADS, Head
from plait.heads.conditioning import ConditionedPyramid, Mode


@HEADS.register("grounding", types=("box",), data_params=("image_key", "feature_channels", "token_dims"))
class GroundingHead(Head):
    """Conditioned feature map → per-location score and box; the best location's box."""

    wants_tokens: ClassVar[bool] = True

    def __init__(
        self,
        image_key: str,
        feature_channels: dict[str, tuple[int, ...]],
        token_dims: dict[str, int],
        channels: int = 64,
        levels: int = 2,
        conditioning: Mode = "film",
        convs: int = 2,
        l1_weight: float = 5.0,
        giou_weight: float = 2.0,
    ) -> None:
        super().__init__()
        context = {k: d for k, d in token_dims.items() if k != image_key}
        self.pyramid = ConditionedPyramid(
            image_key, feature_channels[image_key], context, channels, levels, conditioning
        )
        layers: list[nn.Module] = []
        for _ in range(convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.ReLU()]
        self.tower = nn.Sequential(*layers)
        self.score = nn.Conv2d(channels, 1, 3, padding=1)
        self.sides = nn.Conv2d(channels, 4, 3, padding=1)  # log distances to the 4 sides
        self.l1_weight, self.giou_weight = l1_weight, giou_weight

    def forward(self, fused: FusedOutput) -> Tensor:  # type: ignore[override]
        """(B, H·W, 5): per location a score logit and a box (fractions of the image)."""
        assert fused.inputs is not None and fused.present is not None
        finest = self.pyramid(fused.inputs, fused.present)[0]  # (B, C, H, W)
        features = self.tower(finest)
        b, _, h, w = features.shape
        ys = (torch.arange(h, device=features.device, dtype=features.dtype) + 0.5) / h
        xs = (torch.arange(w, device=features.device, dtype=features.dtype) + 0.5) / w
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) location centres
        # Distances in units of the level's cell, as FCOS normalises by the stride.
        left, top, right, bottom = self.sides(features).clamp(max=8).exp().unbind(1)  # (B, H, W) each
        boxes = torch.stack([cx - left / w, cy - top / h, cx + right / w, cy + bottom / h], dim=-1)
        score = self.score(features).squeeze(1)  # (B, H, W)
        return torch.cat([score.reshape(b, -1, 1), boxes.reshape(b, -1, 4)], dim=-1)

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        """target (B, 4): the true box as fractions of the image."""
        side = int(round(raw.shape[1] ** 0.5))
        # The (square) map's cell holding the box's centre; images are square (the processor's size).
        centre = ((target[:, :2] + target[:, 2:]) / 2).clamp(0, 1 - 1e-6)  # (B, 2) x, y
        cell = (centre[:, 1] * side).long() * side + (centre[:, 0] * side).long()  # (B,)
        chosen = raw[torch.arange(len(raw)), cell, 1:]  # (B, 4)
        giou = generalized_box_iou_loss(chosen, target, reduction="mean")
        return (
            F.cross_entropy(raw[..., 0], cell)
            + self.giou_weight * giou
            + self.l1_weight * F.l1_loss(chosen, target)
        )

    def activate(self, raw: Tensor) -> Tensor:
        """(B, 5): the best location's box (fractions, clipped to the image: its sides may
        reach past the edge) and its probability."""
        probs = raw[..., 0].softmax(dim=1)  # (B, H·W)
        best = probs.argmax(dim=1)
        rows = torch.arange(len(raw), device=raw.device)
        return torch.cat([raw[rows, best, 1:].clamp(0, 1), probs[rows, best, None]], dim=1)

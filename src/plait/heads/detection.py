"""Detection head: torchvision's FCOS on the image encoder's feature pyramid.

FCOS (Tian et al. 2019) is anchor-free: every location of every pyramid level
predicts class scores, its distances to the four sides of a box and a centerness.
Its head, target matching, losses and post-processing (score threshold, NMS,
detections per image) are torchvision's own `FCOS` module, used without its backbone
and image transform: the pyramid comes from the row's image encoder, conditioned on
the other inputs (heads/conditioning.py), and images are already sized and normalised
by the image processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList

from plait.fusion.base import FusedOutput
from plait.heads.base import HEADS, Head
from plait.heads.conditioning import ConditionedPyramid, Mode


@dataclass
class Detections:
    """Raw detection output of one batch, as FCOS's loss and post-processing take it."""

    head_outputs: dict[str, Tensor]  # cls_logits (B, A, K), bbox_regression (B, A, 4), bbox_ctrness (B, A, 1)
    anchors: list[Tensor]  # per image (A, 4) in model pixels
    per_level: list[int]  # locations per pyramid level
    image_size: tuple[int, int]  # (H, W) of the model's input
    present: Tensor  # (B,) bool: rows with an image (the others get no detection)


class _Features(nn.Module):
    """FCOS asks its backbone for `out_channels`; the pyramid is computed outside it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels


@HEADS.register(
    "detection",
    types=("boxes",),
    data_params=("num_classes", "image_key", "feature_channels", "token_dims"),
)
class DetectionHead(Head):
    """FCOS on the (conditioned) image feature pyramid → labelled boxes with scores."""

    wants_tokens: ClassVar[bool] = True

    def __init__(
        self,
        num_classes: int,
        image_key: str,
        feature_channels: dict[str, tuple[int, ...]],
        token_dims: dict[str, int],
        channels: int = 64,
        levels: int = 3,
        conditioning: Mode = "film",
        score_threshold: float = 0.05,
        nms_threshold: float = 0.6,
        detections_per_image: int = 100,
        convs: int = 2,
    ) -> None:
        super().__init__()
        if channels % 32:
            raise ValueError(f"channels must be a multiple of 32 (FCOS's group norm), got {channels}")
        context = {k: d for k, d in token_dims.items() if k != image_key}
        self.pyramid = ConditionedPyramid(
            image_key, feature_channels[image_key], context, channels, levels, conditioning
        )
        strides = [2 ** (i + 1) for i in range(len(feature_channels[image_key]))][-levels:]
        # One anchor point per location, its size the level's stride (FCOS's convention):
        # FCOS assigns a box to the level whose stride × 4 … × 8 spans its size.
        anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * levels)
        self.fcos = FCOS(
            _Features(channels),
            num_classes,
            anchor_generator=anchors,
            head=FCOSHead(channels, 1, num_classes, num_convs=convs),
            score_thresh=score_threshold,
            nms_thresh=nms_threshold,
            detections_per_img=detections_per_image,
        )
        self.detections_per_image = detections_per_image

    def forward(self, fused: FusedOutput) -> Detections:  # type: ignore[override]
        assert fused.inputs is not None and fused.present is not None
        maps = self.pyramid(fused.inputs, fused.present)  # [(B, C, H_l, W_l)]
        size = fused.inputs[self.pyramid.image_key].image_size
        assert size is not None
        outputs = self.fcos.head(maps)
        # AnchorGenerator reads only the batch's image size and the maps' sizes.
        images = ImageList(maps[0].new_zeros(len(maps[0]), 0, *size), [size] * len(maps[0]))
        anchors = self.fcos.anchor_generator(images, maps)
        present = fused.present[self.pyramid.image_key]
        return Detections(outputs, anchors, [m.shape[-2] * m.shape[-1] for m in maps], size, present)

    def loss(self, raw: Detections, target: Tensor) -> Tensor:  # type: ignore[override]
        """target (B, M, 5): box fractions and class id, class -1 for padding."""
        height, width = raw.image_size
        scale = target.new_tensor([width, height, width, height])
        targets = [
            {"boxes": rows[rows[:, 4] >= 0, :4] * scale, "labels": rows[rows[:, 4] >= 0, 4].long()}
            for rows in target
        ]
        losses = self.fcos.compute_loss(targets, raw.head_outputs, raw.anchors, raw.per_level)
        return sum(losses.values())  # type: ignore[return-value]

    def activate(self, raw: Detections) -> Tensor:  # type: ignore[override]
        """(B, K, 6): x0, y0, x1, y1 (fractions of the image), class id, score; the rows
        past an image's detections hold class -1 and score 0."""
        height, width = raw.image_size
        split = [list(o.split(raw.per_level, dim=1)) for o in raw.head_outputs.values()]
        outputs = dict(zip(raw.head_outputs, split, strict=True))
        anchors = [list(a.split(raw.per_level)) for a in raw.anchors]
        found = self.fcos.postprocess_detections(outputs, anchors, [raw.image_size] * len(raw.anchors))
        out = torch.zeros(len(found), self.detections_per_image, 6, device=raw.anchors[0].device)
        out[:, :, 4] = -1
        scale = out.new_tensor([width, height, width, height])
        for i, d in enumerate(found):
            if not bool(raw.present[i]):
                continue
            n = len(d["scores"])
            out[i, :n, :4] = d["boxes"] / scale
            out[i, :n, 4] = d["labels"].float()
            out[i, :n, 5] = d["scores"]
        return out

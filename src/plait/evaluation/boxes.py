"""Box metrics: mean average precision for detection, IoU for grounding (torchmetrics).

Detection (`boxes` targets): `map` (COCO's mAP over IoU 0.5:0.95) and `map_50` (at
IoU 0.5), from torchmetrics' MeanAveragePrecision (pycocotools underneath). Grounding
(`box` targets): `iou_accuracy`, the share of rows whose predicted box overlaps the
true one by IoU ≥ 0.5, and `mean_iou`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou


class BoxesMAP(MeanAveragePrecision):
    """update(preds (B, K, 6), target (B, M, 5)): padded detections (x0, y0, x1, y1,
    class, score; class -1 = none) and true boxes (class -1 = padding)."""

    def __init__(self) -> None:
        super().__init__(box_format="xyxy", iou_type="bbox")

    def update(self, preds: Tensor, target: Tensor) -> None:  # type: ignore[override]
        found = [
            {"boxes": p[p[:, 4] >= 0, :4], "scores": p[p[:, 4] >= 0, 5], "labels": p[p[:, 4] >= 0, 4].long()}
            for p in preds.float()
        ]
        truth = [{"boxes": t[t[:, 4] >= 0, :4], "labels": t[t[:, 4] >= 0, 4].long()} for t in target.float()]
        super().update(found, truth)

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        values = super().compute()
        return {"map": values["map"], "map_50": values["map_50"]}


class BoxIoU(Metric):
    """update(preds (B, 5) box and score, target (B, 4)); boxes as fractions of the image."""

    full_state_update = False

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("iou", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("hits", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        iou = box_iou(preds[:, :4].float(), target.float()).diagonal()  # (B,)
        self.iou += iou.double().sum()
        self.hits += (iou >= self.threshold).double().sum()
        self.total += len(iou)

    def compute(self) -> dict[str, Tensor]:
        total = self.total.clamp_min(1)
        return {"iou_accuracy": self.hits / total, "mean_iou": self.iou / total}

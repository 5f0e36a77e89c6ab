"""Task metrics with stable names, computed with torchmetrics.

classification: accuracy, macro_f1, balanced_accuracy (+ f1 of the positive class and
roc_auc for binary); regression: rmse, mae, r2;
multi-label: micro_f1, macro_f1, mean_ap, subset_accuracy; text, while training:
token_accuracy (generated text is scored in generation.py).

Multi-label labels with no positive row in the evaluated data: their average precision
is undefined and left out of mean_ap (torchmetrics would count it as 0); their F1 is 1
when the label is never predicted and 0 otherwise (torchmetrics' zero_division=1).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
)

from plait.data.processors.text_target import PAD
from plait.evaluation.boxes import BoxesMAP, BoxIoU
from plait.evaluation.thresholds import DEFAULT_THRESHOLD

# The metric each target type is judged by (model selection and summaries).
PRIMARY_METRIC = {
    "category": "accuracy",
    "binary": "accuracy",
    "numeric": "rmse",
    "multilabel": "mean_ap",
    "text": "bleu",
    "retrieval": "recall@1",  # mean of both directions
    "boxes": "map",  # mean average precision over IoU 0.5:0.95 (COCO's)
    "box": "iou_accuracy",  # share of rows whose box overlaps the true one by IoU ≥ 0.5
}


class TaskMetrics(nn.Module):
    """Accumulates one target's metrics over batches of activated predictions.

    update(pred, target): pred is (B, C) probabilities (category), (B,) positive-class
    probability (binary), (B,) values (numeric) or (B, C) label probabilities
    (multilabel, target (B, C) 0/1), as returned by `Head.activate`. A multilabel
    prediction is a label when its probability reaches the label's threshold
    (`thresholds`, default 0.5 each); a binary one is the positive class when its
    probability reaches `thresholds[0]` (default 0.5).
    """

    def __init__(
        self, target_type: str, num_classes: int = 0, thresholds: Sequence[float] | Tensor | None = None
    ) -> None:
        super().__init__()
        self.target_type = target_type
        if target_type == "multilabel":
            self._init_multilabel(num_classes, thresholds)
        elif target_type == "boxes":
            self.metrics = MetricCollection({"map": BoxesMAP()})
        elif target_type == "box":
            self.metrics = MetricCollection({"box": BoxIoU()})
        elif target_type == "text":  # during training: teacher-forced next-token accuracy
            self.metrics = MetricCollection(
                {"token_accuracy": MulticlassAccuracy(num_classes, average="micro", ignore_index=PAD)}
            )
        elif target_type == "numeric":
            self.metrics = MetricCollection(
                {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()}
            )
        else:
            n = 2 if target_type == "binary" else num_classes
            metrics: dict[str, Metric] = {
                "accuracy": MulticlassAccuracy(n, average="micro"),
                "macro_f1": MulticlassF1Score(n, average="macro"),
                "balanced_accuracy": MulticlassAccuracy(n, average="macro"),  # mean recall per class
            }
            if target_type == "binary":
                metrics["f1"] = BinaryF1Score()  # the positive class's
                self.auroc = BinaryAUROC()
                given = torch.as_tensor(DEFAULT_THRESHOLD if thresholds is None else thresholds)
                self.register_buffer("cut", given.float().flatten()[0], persistent=False)  # () threshold
            self.metrics = MetricCollection(metrics)

    def _init_multilabel(self, num_labels: int, thresholds: Sequence[float] | Tensor | None) -> None:
        self.metrics = MetricCollection(
            {
                "micro_f1": MultilabelF1Score(num_labels, average="micro"),
                "macro_f1": MultilabelF1Score(num_labels, average="macro", zero_division=1),
                "subset_accuracy": MultilabelExactMatch(num_labels),
            }
        )
        self.average_precision = MultilabelAveragePrecision(num_labels, average="none")
        cut = torch.full((num_labels,), 0.5) if thresholds is None else torch.as_tensor(thresholds).float()
        if cut.shape != (num_labels,):
            raise ValueError(f"expected {num_labels} multilabel thresholds, got shape {tuple(cut.shape)}")
        self.register_buffer("thresholds", cut, persistent=False)  # (C,)
        self.register_buffer("positives", torch.zeros(num_labels), persistent=False)  # (C,) counts

    def update(self, pred: Tensor, target: Tensor) -> None:
        if self.target_type == "multilabel":  # pred (B, C) probabilities, target (B, C) 0/1
            target = target.long()
            self.average_precision.update(pred, target)
            self.positives += target.sum(0)
            # Ints are taken as decisions (floats would be cut at one shared threshold).
            self.metrics.update((pred >= self.thresholds).long(), target)
            return
        if self.target_type == "text":  # pred (B, L-1) next tokens of target (B, L)
            self.metrics.update(pred.reshape(-1), target[:, 1:].reshape(-1))
            return
        if self.target_type == "binary":
            self.auroc.update(pred, target.long())
            pred = (pred >= self.cut).long()  # (B,) decisions at the threshold
            target = target.long()
        self.metrics.update(pred, target)

    def compute(self) -> dict[str, float]:
        if self.target_type in ("boxes", "box"):  # each metric gives several values
            return {k: float(v) for m in self.metrics.values() for k, v in m.compute().items()}
        values = {k: float(v) for k, v in self.metrics.compute().items()}
        if self.target_type == "binary":
            values["roc_auc"] = float(self.auroc.compute())
        if self.target_type == "multilabel":
            with warnings.catch_warnings():  # labels without positives: left out just below
                warnings.filterwarnings("ignore", "No positive samples")
                per_label = self.average_precision.compute()  # (C,)
            values["mean_ap"] = float(per_label[self.positives > 0].mean())  # nan when none has any
        return values

    def reset(self) -> None:
        self.metrics.reset()
        if self.target_type == "binary":
            self.auroc.reset()
        if self.target_type == "multilabel":
            self.average_precision.reset()
            self.positives.zero_()


def flatten(per_target: dict[str, dict[str, float]]) -> dict[str, float]:
    """One target: plain metric names; several: `target/metric`."""
    if len(per_target) == 1:
        return dict(next(iter(per_target.values())))
    return {f"{t}/{m}": v for t, values in per_target.items() for m, v in values.items()}

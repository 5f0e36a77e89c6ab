"""Task metrics with stable names, computed with torchmetrics.

classification: accuracy, macro_f1 (+ roc_auc for binary); regression: rmse, mae, r2;
text, while training: token_accuracy (generated text is scored in generation.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassF1Score

from plait.data.processors.text_target import PAD

# The metric each target type is judged by (model selection and summaries).
PRIMARY_METRIC = {"category": "accuracy", "binary": "accuracy", "numeric": "rmse", "text": "bleu"}


class TaskMetrics(nn.Module):
    """Accumulates one target's metrics over batches of activated predictions.

    update(pred, target): pred is (B, C) probabilities (category), (B,) positive-class
    probability (binary) or (B,) values (numeric), as returned by `Head.activate`.
    """

    def __init__(self, target_type: str, num_classes: int = 0) -> None:
        super().__init__()
        self.target_type = target_type
        if target_type == "text":  # during training: teacher-forced next-token accuracy
            self.metrics = MetricCollection(
                {"token_accuracy": MulticlassAccuracy(num_classes, average="micro", ignore_index=PAD)}
            )
        elif target_type == "numeric":
            self.metrics = MetricCollection(
                {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()}
            )
        else:
            n = 2 if target_type == "binary" else num_classes
            self.metrics = MetricCollection(
                {
                    "accuracy": MulticlassAccuracy(n, average="micro"),
                    "macro_f1": MulticlassF1Score(n, average="macro"),
                }
            )
            if target_type == "binary":
                self.auroc = BinaryAUROC()

    def update(self, pred: Tensor, target: Tensor) -> None:
        if self.target_type == "text":  # pred (B, L-1) next tokens of target (B, L)
            self.metrics.update(pred.reshape(-1), target[:, 1:].reshape(-1))
            return
        if self.target_type == "binary":
            self.auroc.update(pred, target.long())
            pred = torch.stack([1 - pred, pred], dim=1)  # (B, 2) for the multiclass metrics
            target = target.long()
        self.metrics.update(pred, target)

    def compute(self) -> dict[str, float]:
        values = {k: float(v) for k, v in self.metrics.compute().items()}
        if self.target_type == "binary":
            values["roc_auc"] = float(self.auroc.compute())
        return values

    def reset(self) -> None:
        self.metrics.reset()
        if self.target_type == "binary":
            self.auroc.reset()


def flatten(per_target: dict[str, dict[str, float]]) -> dict[str, float]:
    """One target: plain metric names; several: `target/metric`."""
    if len(per_target) == 1:
        return dict(next(iter(per_target.values())))
    return {f"{t}/{m}": v for t, values in per_target.items() for m, v in values.items()}

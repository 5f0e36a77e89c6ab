"""Held-out evaluation details per target, as plain JSON for the report.

category / binary: confusion-matrix counts, ROC and precision-recall curves (binary:
the positive class; multiclass: one-vs-rest per class, or the micro-average over all
classes past MAX_CURVES); numeric: true and predicted values (a seeded sample of at
most MAX_POINTS); multilabel: per-label counts, F1 at the tuned thresholds, average
precision and PR curves of the most frequent labels; boxes and box: a few held-out
images (PNG, base64) with their true and predicted boxes. Text and retrieval targets
have their metrics in metrics.json only.
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_precision_recall_curve,
    binary_roc,
    multiclass_confusion_matrix,
)

from plait.data.processors import TargetProcessor

MAX_CURVES = 10  # one-vs-rest curves drawn per target; beyond, the micro-average
MAX_CURVE_POINTS = 300  # per curve, thinned evenly (the end points kept)
MAX_POINTS = 2000  # regression points kept for the residual plot
BOX_SAMPLES = 6  # held-out images drawn with their boxes
MIN_BOX_SCORE = 0.3  # detections drawn on them (mAP counts every one)


def target_details(
    proc: TargetProcessor, pred: Tensor, truth: Tensor, images: Tensor | None = None
) -> dict[str, Any] | None:
    """Details of one target from activated predictions and targets (as `Predictor._outputs`);
    box targets also take the first held-out `images` (uint8 (N, C, H, W)) to draw on."""
    pred, truth = pred.detach().float().cpu(), truth.detach().cpu()
    if proc.kind in ("boxes", "box") and images is not None:
        return _boxes(proc, pred, truth.float(), images)
    if proc.kind == "binary":  # pred (N,) positive-class probability, truth (N,) 0/1
        labels = truth.long()
        return {
            "kind": "binary",
            "classes": list(proc.classes_),
            "confusion": _confusion((pred >= proc.threshold_).long(), labels, 2),  # as `predict` decides
            "curves": [_curves(pred, labels, str(proc.classes_[1]))],
            "average": f"positive class {proc.classes_[1]!r}",
        }
    if proc.kind == "category":  # pred (N, C) probabilities, truth (N,) class ids
        classes = list(proc.classes_)
        onehot = torch.nn.functional.one_hot(truth.long(), len(classes))  # (N, C)
        if len(classes) <= MAX_CURVES:
            curves = [_curves(pred[:, i], onehot[:, i], str(c)) for i, c in enumerate(classes)]
            average = "one-vs-rest per class"
        else:  # every (row, class) pair as one binary decision
            curves = [_curves(pred.reshape(-1), onehot.reshape(-1), "all classes (micro-average)")]
            average = "micro-average over classes"
        return {
            "kind": "category",
            "classes": classes,
            "confusion": _confusion(pred, truth.long(), len(classes)),
            "curves": curves,
            "average": average,
        }
    if proc.kind == "numeric":  # both (N,) in the label's units
        keep = np.arange(len(truth))
        if len(keep) > MAX_POINTS:
            keep = np.sort(np.random.default_rng(0).choice(len(keep), MAX_POINTS, replace=False))
        return {
            "kind": "numeric",
            "true": _round(truth.float()[keep].tolist()),
            "predicted": _round(pred[keep].tolist()),
            "rows": len(truth),
        }
    if proc.kind == "multilabel":  # both (N, C): probabilities, 0/1
        return _multilabel(proc, pred, truth.long())
    return None


def _boxes(proc: TargetProcessor, pred: Tensor, truth: Tensor, images: Tensor) -> dict[str, Any]:
    """The first held-out images with their true and predicted boxes (fractions of the
    image; boxes: class names, and scores of the detections kept to draw)."""
    samples = []
    for i, pixels in enumerate(images[:BOX_SAMPLES]):
        if proc.kind == "boxes":  # pred (N, K, 6), truth (N, M, 5)
            true = [[*_round(b[:4]), proc.classes_[int(b[4])]] for b in truth[i].tolist() if b[4] >= 0]
            found = [
                [*_round(b[:4]), proc.classes_[int(b[4])], round(b[5], 3)]
                for b in pred[i].tolist()
                if b[4] >= 0 and b[5] >= MIN_BOX_SCORE
            ]
        else:  # pred (N, 5) box and probability, truth (N, 4)
            true, found = (
                [_round(truth[i].tolist())],
                [[*_round(pred[i, :4].tolist()), "", round(float(pred[i, 4]), 3)]],
            )
        samples.append({"image": _png(pixels), "true": true, "predicted": found})
    return {"kind": proc.kind, "samples": samples, "rows": len(truth)}


def _png(pixels: Tensor) -> str:
    """uint8 (C, H, W) → base64 PNG (JSON-safe)."""
    from PIL import Image

    array = pixels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _confusion(pred: Tensor, labels: Tensor, n: int) -> list[list[int]]:
    """(C, C) counts: rows are true classes, columns predicted (class ids, or the argmax
    of (N, C) probabilities)."""
    return multiclass_confusion_matrix(pred, labels, n).tolist()


def _curves(score: Tensor, positive: Tensor, label: str) -> dict[str, Any]:
    """ROC and PR curve of one binary decision (score (N,), positive (N,) 0/1)."""
    positive = positive.long()
    found = int(positive.sum())
    record: dict[str, Any] = {"label": label, "positives": found, "rows": len(positive)}
    if found == 0 or found == len(positive):  # a curve needs both outcomes
        return record
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*No (positive|negative) samples.*")
        fpr, tpr, _ = binary_roc(score, positive)
        precision, recall, _ = binary_precision_recall_curve(score, positive)
        record.update(
            fpr=_thin(fpr),
            tpr=_thin(tpr),
            auc=float(binary_auroc(score, positive)),
            precision=_thin(precision),
            recall=_thin(recall),
            ap=float(binary_average_precision(score, positive)),
        )
    return record


def _multilabel(proc: TargetProcessor, pred: Tensor, truth: Tensor) -> dict[str, Any]:
    cut = torch.tensor(getattr(proc, "thresholds_", [0.5] * pred.shape[1]))  # (C,)
    chosen = (pred >= cut).long()  # (N, C)
    hits, predicted, actual = (chosen & truth).sum(0), chosen.sum(0), truth.sum(0)
    labels = []
    for i, name in enumerate(proc.classes_):
        tp, p, a = int(hits[i]), int(predicted[i]), int(actual[i])
        record = {
            "label": str(name),
            "positives": a,
            "predicted": p,
            "threshold": round(float(cut[i]), 4),
            "precision": tp / p if p else None,
            "recall": tp / a if a else None,
            "f1": 2 * tp / (p + a) if p + a else None,
        }
        labels.append(record)
    frequent = sorted(range(len(labels)), key=lambda i: -labels[i]["positives"])[:MAX_CURVES]
    curves = [_curves(pred[:, i], truth[:, i], labels[i]["label"]) for i in sorted(frequent)]
    for curve in curves:
        next(r for r in labels if r["label"] == curve["label"])["ap"] = curve.get("ap")
    return {"kind": "multilabel", "labels": labels, "curves": curves, "rows": len(truth)}


def _thin(values: Tensor) -> list[float]:
    """At most MAX_CURVE_POINTS evenly spaced points of a curve, first and last kept."""
    if len(values) > MAX_CURVE_POINTS:
        index = torch.linspace(0, len(values) - 1, MAX_CURVE_POINTS).round().long()
        values = values[index]
    return _round(values.tolist())


def _round(values: list[float]) -> list[float]:
    return [round(float(v), 5) for v in values]

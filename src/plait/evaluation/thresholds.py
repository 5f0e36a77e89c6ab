"""Decision thresholds tuned on held-out predictions: per label for multi-label targets,
and the positive class's for binary ones.

The threshold that maximises a metric (F1 for a multi-label target's labels; the run's
`metric:` for a binary target) on the held-out predictions. Candidates are the midpoints
between consecutive distinct predicted probabilities, one above the largest (to call no
row positive) and one below the smallest (to call every row positive), so a threshold
never sits on a prediction and `p >= t` and `p > t` agree. Among equally good thresholds
the one closest to 0.5 wins; a label without a positive row (or, for metrics other than
F1, without a negative one) keeps 0.5. Written here rather than taken from scikit-learn's
TunedThresholdClassifierCV, which refits an estimator: these predictions come from a
trained network or ensemble, and one sorted pass scores every cut.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from plait.data.processors import BinaryTarget, MultilabelTarget, TargetProcessor

DEFAULT_THRESHOLD = 0.5
BAGS = 50  # bootstrap resamples a binary target's threshold is chosen over
# What a binary target's threshold can maximise (config `metric:`; "auto" is accuracy).
BINARY_METRICS = ("accuracy", "macro_f1", "f1", "balanced_accuracy")


def tune_thresholds(probs: Tensor, targets: Tensor) -> list[float]:
    """probs (N, C) label probabilities, targets (N, C) 0/1 → C thresholds."""
    if probs.shape != targets.shape or probs.dim() != 2:
        raise ValueError(
            f"expected probabilities and targets of the same (N, C) shape, got "
            f"{tuple(probs.shape)} and {tuple(targets.shape)}"
        )
    p = probs.detach().cpu().double().numpy()
    y = targets.detach().cpu().numpy() > 0.5
    return [best_threshold(p[:, c], y[:, c]) for c in range(p.shape[1])]


def best_threshold(
    probs: np.ndarray, positive: np.ndarray, metric: str = "f1", bags: int = 0, seed: int = 0
) -> float:
    """probs (N,), positive (N,) bool → the threshold maximising `metric` (BINARY_METRICS).
    With `bags`, the metric averaged over that many bootstrap resamples of the rows: on
    a few hundred rows the curve of accuracy or F1 against the cut is flat and jagged near
    its top, and one resample's maximum is mostly noise (the bagged ensemble selection of
    plait.ensemble.selection averages for the same reason)."""
    if metric not in BINARY_METRICS:
        raise ValueError(f"unknown threshold metric {metric!r}; expected one of {', '.join(BINARY_METRICS)}")
    probs, positive = np.asarray(probs, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or (n_neg == 0 and metric != "f1"):
        return DEFAULT_THRESHOLD
    order = np.argsort(-probs, kind="stable")
    p, hits = probs[order], positive[order]
    # Row weights (B, N): 1 each, or how often each row is drawn in a bootstrap resample.
    weights = np.ones((1, len(p)))
    if bags:
        weights = np.random.default_rng(seed).multinomial(len(p), np.full(len(p), 1 / len(p)), size=bags)
    # Column k: the top k rows called positive, k = 0..N; (B, N + 1) counts each.
    zero = np.zeros((len(weights), 1))
    tp = np.concatenate([zero, np.cumsum(weights * hits, axis=1)], axis=1)
    called = np.concatenate([zero, np.cumsum(weights, axis=1)], axis=1)
    total_pos = tp[:, -1:]
    fp = called - tp
    fn, tn = total_pos - tp, (called[:, -1:] - total_pos) - fp
    scores = _scores(metric, tp, fp, fn, tn).mean(axis=0)  # (N + 1,)
    # Cut k (0..N) calls the top k rows positive: above the largest probability, between
    # the k-th and (k+1)-th where they differ, or at half the smallest.
    cuts = np.concatenate([[(p[0] + 1) / 2], (p[:-1] + p[1:]) / 2, [p[-1] / 2]])
    valid = np.concatenate([[p[0] < 1], p[:-1] > p[1:], [True]])
    best = scores[valid].max()
    candidates = cuts[valid & np.isclose(scores, best, rtol=0, atol=1e-12)]
    return float(candidates[np.argmin(np.abs(candidates - DEFAULT_THRESHOLD))])


def _scores(metric: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """The metric at every cut, from its confusion counts (each (K,))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        if metric == "f1":
            return f1
        if metric == "accuracy":
            return (tp + tn) / (tp + fp + fn + tn)
        if metric == "balanced_accuracy":
            return np.nan_to_num((tp / (tp + fn) + tn / (tn + fp)) / 2)
        negative_f1 = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        return (f1 + negative_f1) / 2


def decision_thresholds(proc: TargetProcessor) -> list[float] | None:
    """The thresholds a target's probabilities are decided at: one per label
    (multi-label), one for the positive class (binary), or None (argmax, or none)."""
    if isinstance(proc, MultilabelTarget):
        return list(proc.thresholds_)
    if isinstance(proc, BinaryTarget):
        return [proc.threshold_]
    return None

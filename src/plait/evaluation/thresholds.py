"""Per-label decision thresholds for multi-label targets, tuned on validation rows.

For each label, the threshold that maximises that label's F1 on the validation
predictions. Candidates are the midpoints between consecutive distinct predicted
probabilities (and half the smallest one, to call every row positive), so a
threshold never sits on a prediction and `p >= t` and `p > t` agree. Among equally
good thresholds the one closest to 0.5 wins; a label without a positive row in
validation keeps 0.5.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

DEFAULT_THRESHOLD = 0.5


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


def best_threshold(probs: np.ndarray, positive: np.ndarray) -> float:
    """probs (N,), positive (N,) bool → the F1-maximising threshold for one label."""
    n_pos = int(positive.sum())
    if n_pos == 0:
        return DEFAULT_THRESHOLD
    order = np.argsort(-probs, kind="stable")
    p, hits = probs[order], positive[order]
    tp = np.cumsum(hits)  # (N,) true positives when the top k+1 rows are called positive
    called = np.arange(1, len(p) + 1)
    f1 = 2 * tp / (called + n_pos)
    # Cut only between distinct probabilities (and after the last row).
    valid = np.append(p[:-1] > p[1:], True)
    below = np.append(p[1:], 0.0)  # the next probability down (0 after the last row)
    cuts = (p + below) / 2  # (N,) thresholds that call exactly the top k+1 positive
    best = f1[valid].max()
    candidates = cuts[valid & np.isclose(f1, best, rtol=0, atol=1e-12)]
    return float(candidates[np.argmin(np.abs(candidates - DEFAULT_THRESHOLD))])

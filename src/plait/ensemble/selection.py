"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

Start from nothing; in each round add the candidate (again, if it is already in) whose
addition gives the best validation score of the averaged predictions; the weights are
how often each was added. AutoGluon builds its weighted ensembles the same way.
Written here rather than taken from a library: it is a dozen lines of numpy, and the
libraries that have it (AutoGluon, auto-sklearn) bring whole AutoML stacks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ROUNDS = 25


def log_loss(kind: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The validation loss a selection minimises: cross-entropy for classes (a proper
    score, smoother on a small validation split than accuracy), squared error for numbers."""

    def loss(pred: np.ndarray, y: np.ndarray) -> float:
        if kind == "numeric":
            return float(np.mean((pred - y) ** 2))
        eps = 1e-7
        if kind == "binary":
            p = np.clip(pred, eps, 1 - eps)
            return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        p = np.clip(pred[np.arange(len(y)), y.astype(np.int64)], eps, 1.0)
        return float(-np.mean(np.log(p)))

    return loss


def greedy_weights(
    preds: dict[str, np.ndarray],
    y: np.ndarray,
    loss: Callable[[np.ndarray, np.ndarray], float],
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Weights (summing to 1) over `preds` (candidate → validation predictions): the
    first round picks the best single candidate, so the ensemble's validation loss is
    never above it. Ties go to the candidate listed first."""
    names = list(preds)
    counts = dict.fromkeys(names, 0)
    total = np.zeros_like(next(iter(preds.values())), dtype=np.float64)
    for step in range(1, rounds + 1):
        scores = [loss((total + preds[n]) / step, y) for n in names]
        best = names[int(np.argmin(scores))]
        counts[best] += 1
        total += preds[best]
    return {n: c / rounds for n, c in counts.items() if c}

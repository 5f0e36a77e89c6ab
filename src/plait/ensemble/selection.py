"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

Start from nothing; in each round add the candidate (again, if it is already in) whose
addition gives the best validation score of the averaged predictions; the weights are
how often each was added. AutoGluon builds its weighted ensembles the same way. With a
validation split of a few hundred rows one selection overfits it, so `bagged_weights`
averages the selections on bootstrap resamples of the rows (the paper's bagged
selection), and keeps the result only where it beats the best single candidate.
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


BAGS = 20


def bagged_weights(
    preds: dict[str, np.ndarray],
    y: np.ndarray,
    loss: Callable[[np.ndarray, np.ndarray], float],
    seed: int = 0,
    bags: int = BAGS,
) -> dict[str, float]:
    """The mean of greedy_weights over `bags` bootstrap resamples of the validation rows;
    the best single candidate alone (weight 1) when that mean does not beat it on the
    whole validation split."""
    rng = np.random.default_rng(seed)
    total = dict.fromkeys(preds, 0.0)
    for _ in range(bags):
        rows = rng.integers(0, len(y), len(y))
        for name, weight in greedy_weights({n: p[rows] for n, p in preds.items()}, y[rows], loss).items():
            total[name] += weight / bags
    weights = {n: round(w, 4) for n, w in total.items() if w > 0}
    best = min(preds, key=lambda n: loss(preds[n], y))
    mixed = sum(w * preds[n] for n, w in weights.items()) / sum(weights.values())
    if loss(mixed, y) >= loss(preds[best], y):
        return {best: 1.0}
    scale = sum(weights.values())
    return {n: w / scale for n, w in weights.items()}

"""K-fold bagging of a member (AutoGluon's bagged models, Breiman's bagging with folds).

A member fitted once on the training split and early-stopped on the validation split
sees only part of the rows, and its validation predictions are the only honest ones it
has. Bagged, it is fitted K times on the training and validation rows together, each
time holding one fold out (its early stopping's rows): every row then has an
out-of-fold prediction from a model that never saw it, the K models together saw every
row, and their mean predicts with less variance than any one of them. Written here
rather than taken from scikit-learn's BaggingClassifier: that resamples rows with
replacement and keeps no out-of-fold predictions, and its models are pickled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from plait.ensemble.members import Member

FOLDS = 5


class BaggedMember:
    """K fitted models of one learner; predicts their mean (probabilities or values)."""

    def __init__(self, name: str, folds: list[Member]) -> None:
        self.name, self.folds = name, folds

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([fold.predict(x) for fold in self.folds], axis=0)


def fold_rows(y: np.ndarray, kind: str, folds: int, seed: int) -> list[np.ndarray]:
    """The held-out row indices of each fold: stratified by class where every class has
    a row in every fold, else plain shuffled folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = y.astype(np.int64) if kind != "numeric" else None
    if labels is not None and np.bincount(labels)[np.unique(labels)].min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        return [held for _, held in splitter.split(np.zeros(len(y)), labels)]
    return [held for _, held in KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))]


def fit_bagged(
    name: str,
    fit: Callable[[np.ndarray, np.ndarray], Member],
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    seed: int,
    folds: int = FOLDS,
) -> tuple[BaggedMember, np.ndarray]:
    """The bagged member and its out-of-fold predictions of every row of `x`.
    `fit(fitted_rows, held_rows)` fits one model (held_rows: its early stopping's)."""
    models: list[Member] = []
    oof: np.ndarray | None = None
    for held in fold_rows(y, kind, folds, seed):
        rest = np.setdiff1d(np.arange(len(y)), held)
        model = fit(rest, held)
        pred = model.predict(x[held])
        if oof is None:  # (N,) or (N, C), as the member predicts
            oof = np.zeros((len(y), *pred.shape[1:]), dtype=np.float64)
        oof[held] = pred
        models.append(model)
    assert oof is not None
    return BaggedMember(name, models), oof

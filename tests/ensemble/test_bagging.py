"""K-fold bagging of a member: folds, honest out-of-fold predictions, the mean of folds."""

from __future__ import annotations

import numpy as np

from plait.ensemble.bagging import BaggedMember, fit_bagged, fold_rows


class Memory:
    """A member that remembers which rows it was fitted on (column 0 holds the row id)
    and predicts 1 for those, 0 for the others: it shows which rows a fold saw."""

    name = "memory"

    def __init__(self, seen: np.ndarray) -> None:
        self.seen = set(seen.tolist())

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array([float(int(i) in self.seen) for i in x[:, 0]])


def test_folds_cover_every_row_once_and_keep_each_class_in_every_fold():
    y = np.array([0] * 40 + [1] * 10 + [2] * 5, dtype=np.float64)
    folds = fold_rows(y, "category", 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    assert all(set(y[held].tolist()) == {0.0, 1.0, 2.0} for held in folds)
    # A class too rare to be in every fold: plain shuffled folds, still a partition.
    rare = np.array([0] * 20 + [1] * 2, dtype=np.float64)
    assert sorted(np.concatenate(fold_rows(rare, "category", 5, seed=0)).tolist()) == list(range(22))
    numbers = np.linspace(0, 1, 23)
    assert sorted(np.concatenate(fold_rows(numbers, "numeric", 5, seed=0)).tolist()) == list(range(23))


def test_out_of_fold_predictions_come_from_models_that_never_saw_the_row():
    x = np.arange(30, dtype=np.float64)[:, None]
    y = np.arange(30) % 2

    def fit(fitted: np.ndarray, held: np.ndarray) -> Memory:
        assert not set(fitted) & set(held)
        return Memory(fitted)

    bagged, oof = fit_bagged("memory", fit, x, y.astype(np.float64), "binary", seed=1)
    assert oof.shape == (30,) and (oof == 0).all()  # no row predicted by a model that saw it
    assert len(bagged.folds) == 5
    # Each row was seen by 4 of the 5 fold models: their mean says so.
    assert np.allclose(bagged.predict(x), 0.8)


def test_a_bagged_member_averages_its_folds():
    class Constant:
        name = "constant"

        def __init__(self, value: float) -> None:
            self.value = value

        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.full((len(x), 2), self.value)

    bagged = BaggedMember("constant", [Constant(0.2), Constant(0.4), Constant(0.9)])
    assert np.allclose(bagged.predict(np.zeros((3, 1))), 0.5)

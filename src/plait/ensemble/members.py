"""Learners beside the networks, on the flat table of plait.ensemble.features.

Each predicts what a network's head activates to, so members can be averaged:
class probabilities (N, C), the positive class's probability (N,), or values in the
label's units (N,). Each saves to files a run folder may hold (no pickle): LightGBM in
its own text model format, the linear probe as JSON.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from plait.config import LightGBMConfig
from plait.errors import ConfigError

# Target kinds a member can learn (text and retrieval stay with the networks).
TASKS = ("category", "binary", "numeric")
SMALL_TABLE = 1_000_000  # cells (rows × columns) below which LightGBM runs on one thread


class Member(Protocol):
    name: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


def lightgbm_module() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise ConfigError("the lightgbm candidate needs LightGBM: pip install 'plait[ensemble]'") from None
    return lightgbm


class LightGBMMember:
    """Gradient-boosted trees (LightGBM), early-stopped on the validation split."""

    name = "lightgbm"

    def __init__(self, booster: Any, kind: str) -> None:
        self.booster, self.kind = booster, kind

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        kind: str,
        num_classes: int,
        categorical: list[int],
        seed: int,
        deadline: float | None = None,
        settings: LightGBMConfig | None = None,
    ) -> LightGBMMember:
        lgb = lightgbm_module()
        params = lightgbm_params(settings or LightGBMConfig(), kind, x.shape, seed)
        if kind == "category":
            params["num_class"] = num_classes
        train = lgb.Dataset(x, y, categorical_feature=categorical or "auto", free_raw_data=False)
        val = lgb.Dataset(x_val, y_val, reference=train)
        callbacks = [lgb.early_stopping(50, verbose=False)]
        if deadline is not None:
            callbacks.append(_stop_at(deadline))
        booster = lgb.train(params, train, num_boost_round=5000, valid_sets=[val], callbacks=callbacks)
        return cls(booster, kind)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_iteration=self.booster.best_iteration or None))

    def save(self, path: Path) -> None:
        path.write_text(self.booster.model_to_string(num_iteration=self.booster.best_iteration or None))

    @classmethod
    def load(cls, path: Path, kind: str) -> LightGBMMember:
        lgb = lightgbm_module()
        try:
            return cls(lgb.Booster(model_str=path.read_text()), kind)
        except lgb.basic.LightGBMError as err:  # a damaged model file
            raise ValueError(str(err)) from None


def lightgbm_params(settings: LightGBMConfig, kind: str, shape: tuple[int, ...], seed: int) -> dict[str, Any]:
    """LightGBM's parameters for a (rows, columns) training table: the config's settings,
    "auto" ones sized to the table."""
    rows, width = shape
    objective = {"category": "multiclass", "binary": "binary", "numeric": "regression"}[kind]
    auto = settings.min_data_in_leaf == "auto", settings.feature_fraction == "auto"
    return {
        "objective": objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        # Small tables: a leaf needs a few rows, not LightGBM's fixed 20.
        "min_data_in_leaf": int(np.clip(rows // 100, 3, 20)) if auto[0] else settings.min_data_in_leaf,
        # Wide embeddings: sample columns.
        "feature_fraction": (0.9 if width <= 100 else 0.5) if auto[1] else settings.feature_fraction,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": settings.lambda_l2,
        "seed": seed,
        "deterministic": True,
        # One thread for a small table: LightGBM's OpenMP threads gain nothing there, and on
        # busy cores they spin against the other processes (60 rows: 19 s on two threads,
        # 0.03 s on one, 2026-12-03). Else the threads torch may use.
        "num_threads": 1 if rows * width < SMALL_TABLE else torch.get_num_threads(),
        "verbose": -1,
    }


def _stop_at(deadline: float) -> Any:
    """A LightGBM callback that ends boosting at `deadline` (time.monotonic), keeping the
    best iteration so far: --time-limit covers every candidate."""
    lgb = lightgbm_module()

    def callback(env: Any) -> None:
        if time.monotonic() > deadline:
            best = env.model.best_iteration or env.iteration
            raise lgb.callback.EarlyStopException(best, env.evaluation_result_list)

    callback.order = 40  # after early stopping's own bookkeeping
    return callback


class LinearMember:
    """A linear probe: logistic regression (classes) or ridge regression (numbers) on
    standardised columns, category ids one-hot, missing values at the training mean.
    Fitted with scikit-learn; kept as plain arrays, so predicting needs only numpy."""

    name = "linear"

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.kind: str = state["kind"]
        self.numeric = np.asarray(state["numeric"], dtype=np.int64)
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.std = np.asarray(state["std"], dtype=np.float64)
        self.categories = {int(k): np.asarray(v) for k, v in state["categories"].items()}
        self.coef = np.asarray(state["coef"], dtype=np.float64)  # (outputs, width)
        self.intercept = np.asarray(state["intercept"], dtype=np.float64)

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, kind: str, num_classes: int, categorical: list[int], seed: int
    ) -> LinearMember:
        from sklearn.linear_model import LogisticRegressionCV, RidgeCV

        numeric = [i for i in range(x.shape[1]) if i not in set(categorical)]
        mean = np.nan_to_num(np.nanmean(x[:, numeric], axis=0)) if numeric else np.zeros(0)
        std = np.nan_to_num(np.nanstd(x[:, numeric], axis=0)) if numeric else np.zeros(0)
        std[std == 0] = 1.0
        categories = {i: np.unique(x[:, i][~np.isnan(x[:, i])]) for i in categorical}
        state: dict[str, Any] = {
            "kind": kind,
            "numeric": numeric,
            "mean": mean.tolist(),
            "std": std.tolist(),
            "categories": {str(i): v.tolist() for i, v in categories.items()},
        }
        design = cls({**state, "coef": [[0.0]], "intercept": [0.0]}).design(x)
        # The penalty's strength by cross-validation on the training rows: a probe on a few
        # hundred rows and a hundred columns overfits at any fixed one.
        if kind == "numeric":
            model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(design, y)
            coef, intercept = model.coef_.reshape(1, -1), np.atleast_1d(model.intercept_)
        else:
            labels = y.astype(np.int64)
            folds = int(np.clip(np.bincount(labels).min(), 2, 3))  # each class in every fold
            model = LogisticRegressionCV(
                Cs=np.logspace(-3, 2, 8), cv=folds, scoring="neg_log_loss", max_iter=2000, random_state=seed
            )
            with warnings.catch_warnings():  # notices of defaults changing in later releases
                warnings.simplefilter("ignore", FutureWarning)
                model.fit(design, labels)
            coef, intercept = model.coef_, model.intercept_
            if kind == "category" and len(model.classes_) < num_classes:  # a class absent from training
                full = np.zeros((num_classes, coef.shape[1]))
                bias = np.full(num_classes, -1e4)
                full[model.classes_], bias[model.classes_] = coef, intercept
                coef, intercept = full, bias
        return cls({**state, "coef": coef.tolist(), "intercept": intercept.tolist()})

    def design(self, x: np.ndarray) -> np.ndarray:
        """Standardised numbers (missing: 0, the training mean) then one-hot categories."""
        parts = [np.nan_to_num((x[:, self.numeric] - self.mean) / self.std)]
        for i, values in self.categories.items():
            parts.append((x[:, [i]] == values[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.design(x) @ self.coef.T + self.intercept  # (N, outputs)
        if self.kind == "numeric":
            return z[:, 0]
        if self.kind == "binary":
            return 1.0 / (1.0 + np.exp(-z[:, 0]))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.state))

    @classmethod
    def load(cls, path: Path, kind: str) -> LinearMember:
        return cls(json.loads(path.read_text()))

"""Target processors: labels → tensors for the losses, and back to labels for predictions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.processors.base import Processor, is_empty
from plait.data.processors.tabular import category_keys, to_float
from plait.errors import DataError


def check_no_missing(values: pd.Series, column: str) -> None:
    empty = values.index[[is_empty(v) for v in values.tolist()]]  # labels = table positions
    if len(empty):
        rows = ", ".join(str(int(r) + 1) for r in empty[:5]) + (", ..." if len(empty) > 5 else "")
        raise DataError(
            f"label column {column!r} is empty in {len(empty)} of {len(values)} rows "
            f"(rows {rows}); drop or fill those rows"
        )


class TargetProcessor(Processor):
    @property
    def num_classes(self) -> int:
        """Classes for classification targets; 0 for numeric ones."""
        return len(getattr(self, "classes_", []))

    def select(self, frame: pd.DataFrame, name: str) -> pd.Series | pd.DataFrame:
        """The cells this target reads (its own column; retrieval reads its towers')."""
        return frame[name]

    def source_columns(self, name: str) -> list[str]:
        return [name]

    def transform(self, values: pd.Series, column: str) -> Tensor:
        raise NotImplementedError

    def head_kwargs(self) -> dict[str, Any]:
        return {}

    def image_input(self) -> str | None:
        """The image input this target is drawn on (box targets), whose augmentation
        must move the target with the pixels; None for the others."""
        return None


class CategoryTarget(TargetProcessor):
    """Class labels → (N,) int64 class ids."""

    kind = "category"

    def fit(self, values: pd.Series, column: str = "label") -> CategoryTarget:
        check_no_missing(values, column)
        classes = sorted(set(category_keys(values)), key=natural_key)
        if len(classes) < 2:
            raise DataError(f"label column {column!r} has a single value {classes[0]!r}; nothing to learn")
        self.classes_ = classes
        return self

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        self.check_fitted()
        check_no_missing(values, column)
        lookup = {c: i for i, c in enumerate(self.classes_)}
        keys = category_keys(values)
        unseen = sorted({k for k in keys if k not in lookup})
        if unseen:
            raise DataError(
                f"label column {column!r} has values not seen in training: "
                f"{', '.join(map(repr, unseen[:5]))}; known: {', '.join(map(repr, self.classes_[:20]))}"
            )
        return torch.tensor([lookup[k] for k in keys], dtype=torch.long)

    def head_kwargs(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes_)}


class BinaryTarget(CategoryTarget):
    """Two classes → (N,) float 0/1; the second class (sorted; `1`, `True`, `yes`) is positive.

    `threshold_`: a row is the positive class when its probability reaches it; 0.5 after
    fit, tuned on held-out predictions after training (plait.evaluation.thresholds).
    """

    kind = "binary"
    threshold_: float = 0.5  # the class's, for run folders saved before thresholds were tuned

    def fit(self, values: pd.Series, column: str = "label") -> BinaryTarget:
        super().fit(values, column)
        if len(self.classes_) != 2:
            raise DataError(
                f"label column {column!r} is binary but has {len(self.classes_)} values; "
                f"use --type {column}=category"
            )
        self.threshold_ = 0.5
        return self

    def decide(self, probs: Tensor | Any) -> list[Any]:
        """(N,) positive-class probabilities → the N predicted classes."""
        chosen = torch.as_tensor(probs).float() >= self.threshold_
        return [self.classes_[int(c)] for c in chosen.tolist()]

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        return super().transform(values, column).float()

    def head_kwargs(self) -> dict[str, Any]:
        return {}


class NumericTarget(TargetProcessor):
    """Numbers → (N,) float; the head predicts in standardised units and scales back."""

    kind = "numeric"

    def fit(self, values: pd.Series, column: str = "label") -> NumericTarget:
        array = self._numbers(values, column)
        self.mean_ = float(array.mean())
        self.std_ = float(array.std()) or 1.0
        return self

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        self.check_fitted()
        return torch.from_numpy(self._numbers(values, column).astype(np.float32))

    @staticmethod
    def _numbers(values: pd.Series, column: str) -> np.ndarray:
        """Labels → float64, refusing empty cells, text, ±inf and numbers past float32."""
        check_no_missing(values, column)
        array, _ = to_float(values, column)  # ±inf (and only they, now) are NaN here
        bad = np.flatnonzero(~(np.abs(array) <= np.finfo(np.float32).max))
        if len(bad):
            raise DataError(
                f"label column {column!r}, row {int(values.index[bad[0]]) + 1}: expected a finite "
                f"number within float32 range, got {values.tolist()[bad[0]]!r:.60} ({len(bad)} such rows)"
            )
        return array

    def head_kwargs(self) -> dict[str, Any]:
        return {"target_mean": self.mean_, "target_std": self.std_}


def natural_key(value: str) -> tuple[int, float, str]:
    """Numbers sort numerically before words: '2' < '10' < 'cat'; 'no' < 'yes' for binary."""
    try:
        number = float(value)
        if not math.isfinite(number):  # NaN compares false both ways: the order would break
            raise ValueError(value)
        return (0, number, "")
    except ValueError:
        order = {"false": 0, "no": 0, "negative": 0, "true": 1, "yes": 1, "positive": 1}
        return (1, float(order.get(value.lower(), 0.5)), value)

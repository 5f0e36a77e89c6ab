"""Multi-label targets: a set of labels per row → (N, C) 0/1 indicators, and back.

A cell is a delimited string (`"a|b|c"`), a list (Parquet, JSONL) or a JSON list
written as a string (`["a", "b"]`, `[]`), so a CSV can hold an empty set as `[]`.
An empty cell is a missing label, an error like for every other target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.processors.base import is_empty
from plait.data.processors.targets import TargetProcessor, check_no_missing, natural_key
from plait.errors import ConfigError, DataError


class MultilabelTarget(TargetProcessor):
    """Label sets → (N, C) float32 0/1; `decode` turns probabilities into label sets.

    Fitted: `classes_` (sorted labels), `frequencies_` (each label's share of rows on the
    fitting data, the training rows once `fit_frequencies` ran) and `thresholds_` (the
    per-label decision thresholds: 0.5 after fit, tuned on validation after training).
    """

    kind = "multilabel"

    def __init__(self, delimiter: str = "|") -> None:
        self.delimiter = delimiter

    def fit(self, values: pd.Series, column: str = "label") -> MultilabelTarget:
        if not isinstance(self.delimiter, str) or not self.delimiter:
            raise ConfigError(
                f"column {column!r}: multilabel delimiter must be a non-empty string, got {self.delimiter!r}"
            )
        check_no_missing(values, column)
        sets = self.parse(values, column)
        classes = sorted({label for labels in sets for label in labels}, key=natural_key)
        if len(classes) < 2:
            found = repr(classes[0]) if classes else "none"
            raise DataError(
                f"label column {column!r} is multilabel but holds {len(classes)} distinct label(s) "
                f"({found}); it needs at least 2 (a single yes/no label is --type {column}=binary)"
            )
        self.classes_ = classes
        self.thresholds_ = [0.5] * len(classes)
        return self.fit_frequencies(values, column)

    def fit_frequencies(self, values: pd.Series, column: str = "label") -> MultilabelTarget:
        """Each label's share of the rows in `values` (the training split), for class weights."""
        self.check_fitted()
        self.frequencies_ = [float(f) for f in self.transform(values, column).double().mean(0).tolist()]
        return self

    def parse(self, values: pd.Series, column: str = "label") -> list[list[str]]:
        """Cells → sorted, distinct labels per row (an empty cell gives an empty list)."""
        return [self._labels(v, column, int(row)) for row, v in values.items()]

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        self.check_fitted()
        check_no_missing(values, column)
        lookup = {c: i for i, c in enumerate(self.classes_)}
        out = np.zeros((len(values), len(self.classes_)), dtype=np.float32)
        unseen: dict[str, list[int]] = {}  # label → table rows (1-based)
        for pos, (row, labels) in enumerate(zip(values.index, self.parse(values, column), strict=True)):
            for label in labels:
                if label in lookup:
                    out[pos, lookup[label]] = 1.0
                else:
                    unseen.setdefault(label, []).append(int(row) + 1)
        if unseen:
            rows = sorted({r for rs in unseen.values() for r in rs})
            where = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            raise DataError(
                f"label column {column!r} has labels not seen in training in rows {where}: "
                f"{', '.join(map(repr, sorted(unseen)[:5]))}; "
                f"known: {', '.join(map(repr, self.classes_[:20]))}"
            )
        return torch.from_numpy(out)

    def decode(self, probs: Tensor) -> list[str]:
        """(N, C) probabilities → the labels at or above their thresholds, joined by the
        delimiter in `classes_` order ("" for an empty set)."""
        self.check_fitted()
        chosen = probs.float() >= torch.tensor(self.thresholds_)  # (N, C)
        return [
            self.delimiter.join(c for c, on in zip(self.classes_, row, strict=True) if on)
            for row in chosen.tolist()
        ]

    def head_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.classes_), "label_frequencies": list(self.frequencies_)}

    def _labels(self, value: Any, column: str, row: int) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):  # a JSON list, e.g. `[]` for the empty set in a CSV
                try:
                    value = json.loads(text)
                except (json.JSONDecodeError, RecursionError):  # nesting past Python's stack
                    raise DataError(
                        f"label column {column!r}, row {row + 1}: {_short(text)} starts with '[' but is "
                        f"not a JSON list; write a JSON list of labels or labels joined by {self.delimiter!r}"
                    ) from None
            else:
                return _clean(text.split(self.delimiter))
        if isinstance(value, (list, tuple, np.ndarray)):
            return _clean(value)
        if is_empty(value):
            return []  # a missing cell; check_no_missing reports those before they matter
        return _clean([value])  # a number: a set of one label


def _clean(labels: Sequence[Any] | np.ndarray) -> list[str]:
    """Labels as strings (3 and 3.0 alike), stripped, without empties or repeats, sorted."""
    keys = set()
    for label in labels:
        if label is None or (isinstance(label, float) and np.isnan(label)):
            continue
        key = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label).strip()
        if key:
            keys.add(key)
    return sorted(keys, key=natural_key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

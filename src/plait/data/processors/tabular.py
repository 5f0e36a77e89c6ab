"""Numeric and category processors for tabular columns."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import torch

from plait.data.processors.base import Encoded, InputProcessor, is_empty
from plait.errors import DataError


def to_float(values: pd.Series, column: str) -> np.ndarray:
    """Numbers (or numeric strings) → float64; empty cells and ±inf → NaN; text → error."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & ~pd.Series([is_empty(v) for v in values.tolist()], index=values.index)
    if bad.any():
        first = bad[bad].index.min()  # index label = the row's position in the table
        raise DataError(
            f"column {column!r}, row {int(first) + 1}: expected a number, got {values[first]!r} "
            f"({int(bad.sum())} such cells); give the column another type with --type {column}=category"
        )
    array = numbers.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    array[~np.isfinite(array)] = np.nan
    return array


class NumericProcessor(InputProcessor):
    """Numbers → (N, 2) float: [standardised value (0 when missing), missing flag].

    The row stays present when the number is missing: the flag tells the encoder,
    as in the usual mean-imputation-plus-indicator treatment.
    """

    kind = "numeric"

    def __init__(self, log: bool = False) -> None:
        self.log = log

    def _prepare(self, values: pd.Series, column: str) -> np.ndarray:
        array = to_float(values, column)
        if self.log:
            if np.nanmin(array, initial=0.0) < 0:
                raise DataError(f"column {column!r}: log scaling needs non-negative numbers")
            array = np.log1p(array)
        return array

    def fit(self, values: pd.Series, column: str = "numeric", on_bad_file: str = "error") -> NumericProcessor:
        array = self._prepare(values, column)
        finite = array[~np.isnan(array)]
        self.mean_ = float(finite.mean()) if len(finite) else 0.0
        std = float(finite.std()) if len(finite) else 1.0
        self.std_ = std if std > 1e-12 else 1.0
        return self

    def transform(self, values: pd.Series, column: str = "numeric", on_bad_file: str = "error") -> Encoded:
        self.check_fitted()
        array = self._prepare(values, column)
        missing = np.isnan(array)
        scaled = np.where(missing, 0.0, (array - self.mean_) / self.std_)
        features = np.stack([scaled, missing.astype(np.float64)], axis=1).astype(np.float32)
        return Encoded(torch.from_numpy(features), torch.ones(len(array), dtype=torch.bool))

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_features": 2}


def category_keys(values: pd.Series) -> list[str | None]:
    """Cells → vocabulary keys (None for empty); 3 and 3.0 are the same category."""
    keys: list[str | None] = []
    for v in values.tolist():
        if is_empty(v):
            keys.append(None)
        elif isinstance(v, float) and v.is_integer():
            keys.append(str(int(v)))
        else:
            keys.append(str(v).strip())
    return keys


class CategoryProcessor(InputProcessor):
    """Categories → (N,) int64 ids; 0 is the unknown bucket (rare or unseen values)."""

    kind = "category"

    def __init__(self, min_frequency: int = 1, max_categories: int | None = None) -> None:
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def fit(
        self, values: pd.Series, column: str = "category", on_bad_file: str = "error"
    ) -> CategoryProcessor:
        counts = Counter(k for k in category_keys(values) if k is not None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [k for k, n in ranked if n >= self.min_frequency][: self.max_categories]
        self.vocab_ = kept  # id = position + 1
        return self

    def transform(self, values: pd.Series, column: str = "category", on_bad_file: str = "error") -> Encoded:
        self.check_fitted()
        lookup = {k: i + 1 for i, k in enumerate(self.vocab_)}
        keys = category_keys(values)
        ids = torch.tensor([lookup.get(k, 0) if k is not None else 0 for k in keys], dtype=torch.long)
        present = torch.tensor([k is not None for k in keys], dtype=torch.bool)
        return Encoded(ids, present)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"num_embeddings": len(self.vocab_) + 1}


class TabularProcessor(InputProcessor):
    """Several numeric and category columns as one input: (N, 2·n_numeric + n_category)
    float32 = [standardised value, missing flag] per numeric column, then each category
    column's id (exact in float32; the encoder casts back to int64)."""

    kind = "tabular"

    def __init__(
        self,
        numeric: dict[str, dict[str, Any]] | None = None,
        category: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.numeric = numeric or {}
        self.category = category or {}
        self._members: dict[str, InputProcessor] = {}

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.category]

    def select(self, frame: pd.DataFrame, key: str) -> pd.DataFrame:
        return frame[self.columns]

    def source_columns(self, key: str) -> list[str]:
        return self.columns

    @property
    def is_fitted(self) -> bool:
        return bool(self._members)

    def fit(
        self, values: pd.DataFrame, column: str = "tabular", on_bad_file: str = "error"
    ) -> TabularProcessor:
        members: dict[str, InputProcessor] = {}
        for name, options in self.numeric.items():
            members[name] = NumericProcessor.create(options, name).fit(values[name], name)
        for name, options in self.category.items():
            members[name] = CategoryProcessor.create(options, name).fit(values[name], name)
        self._members = members
        return self

    def transform(self, values: pd.DataFrame, column: str = "tabular", on_bad_file: str = "error") -> Encoded:
        self.check_fitted()
        parts = [self._members[n].transform(values[n], n).values for n in self.numeric]  # (N, 2) each
        parts += [self._members[n].transform(values[n], n).values.float().unsqueeze(1) for n in self.category]
        return Encoded(torch.cat(parts, dim=1), torch.ones(len(values), dtype=torch.bool))

    def encoder_kwargs(self) -> dict[str, Any]:
        sizes = [self._members[n].encoder_kwargs()["num_embeddings"] for n in self.category]
        return {"num_numeric": len(self.numeric), "category_sizes": sizes}

    def state(self) -> dict[str, Any]:
        self.check_fitted()
        members = {name: p.state() for name, p in self._members.items()}
        return {"kind": self.kind, "params": self.get_params(), "fitted": {"members": members}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularProcessor:
        obj = cls(**state["params"])
        kinds = {"numeric": NumericProcessor, "category": CategoryProcessor}
        obj._members = {
            name: kinds[member["kind"]].from_state(member)
            for name, member in state["fitted"]["members"].items()
        }
        return obj

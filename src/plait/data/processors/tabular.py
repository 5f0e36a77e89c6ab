"""Numeric and category processors for tabular columns."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from plait.data.processors.base import Encoded, InputProcessor, is_empty
from plait.errors import ConfigError, DataError

# Fitting statistics (sums of squares) stay finite for inputs clipped to this size.
_MAX_FIT_VALUE = 1e150
# Scaled values are clipped to this size: a huge number far outside the training range
# must not overflow float32 into inf.
_MAX_SCALED = 1e6
# scaling "auto": a column whose skewness is beyond this gets quantile scaling, the rest
# standard (AutoGluon's tabular network uses the same rule and threshold): a long tail
# (prices, areas, counts) would otherwise squash most rows into a sliver near the mean.
SKEW_THRESHOLD = 0.99
# An integer column with at most this many distinct values, each seen CODE_MIN_ROWS times
# on average, may be a code (zipcode, store number, year): TabularProcessor also gives
# it an embedding per value, beside its scaled number, so the network can learn effects
# that do not grow with the number.
MAX_CODES, CODE_MIN_ROWS = 50, 5


def _as_number(value: Any) -> float:
    """One cell → float: NaN when it is no real number, ±inf past the float range."""
    if isinstance(value, (complex, np.complexfloating)):
        return np.nan
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float: infinite, so missing
        return np.inf
    except (TypeError, ValueError):  # text, lists, dicts
        return np.nan


def _numbers(values: pd.Series) -> pd.Series:
    """Cells → real numbers (NaN where a cell is none), vectorised when pandas can."""
    try:
        numbers = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError, OverflowError):  # lists or dicts in cells
        numbers = None
    if numbers is None or numbers.dtype.kind not in "biuf":  # complex; ints past int64
        numbers = pd.Series([_as_number(v) for v in values.tolist()], index=values.index, dtype=np.float64)
    return numbers


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_float(values: pd.Series, column: str, on_bad_row: str = "error") -> tuple[np.ndarray, list[int]]:
    """Numbers (or numeric strings) → float64 with NaN for empty cells and ±inf, plus the
    positions of cells holding text. Text is an error unless on_bad_row says otherwise,
    when it becomes NaN (missing) and its position is reported."""
    numbers = _numbers(values)
    bad = numbers.isna() & ~pd.Series([is_empty(v) for v in values.tolist()], index=values.index)
    if bad.any() and on_bad_row == "error":
        first = bad[bad].index.min()  # index label = the row's position in the table
        raise DataError(
            f"column {column!r}, row {int(first) + 1}: expected a number, got {_short(values[first])} "
            f"({int(bad.sum())} such cells); fix them, pass --on-bad-row skip, or give the column "
            f"another type with --type {column}=category"
        )
    array = numbers.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    array[~np.isfinite(array)] = np.nan
    return array, np.flatnonzero(bad.to_numpy()).tolist()


class NumericProcessor(InputProcessor):
    """Numbers → (N, 2) float: [scaled value (0 when missing), missing flag].

    scaling: "standard" (mean, std), "robust" (median, interquartile range: outliers
    do not squash the rest), "quantile" (training quantiles mapped onto a standard
    normal, clipped at ±3.1: any distribution becomes well-behaved) or "auto" (the
    default: quantile for a skewed column, |skewness| > SKEW_THRESHOLD, else standard;
    `method_` records the choice).
    The row stays present when the number is missing: the flag tells the encoder,
    as in the usual mean-imputation-plus-indicator treatment.
    """

    kind = "numeric"

    def __init__(
        self, scaling: Literal["auto", "standard", "robust", "quantile"] = "auto", log: bool = False
    ) -> None:
        self.scaling = scaling
        self.log = log

    def _prepare(self, values: pd.Series, column: str, on_bad_row: str) -> tuple[np.ndarray, list[int]]:
        array, bad = to_float(values, column, on_bad_row)
        if self.log:
            negative = np.flatnonzero(array < 0)
            if len(negative):
                raise DataError(
                    f"column {column!r}, row {int(values.index[negative[0]]) + 1}: log scaling needs "
                    f"non-negative numbers, got {array[negative[0]]:g} ({len(negative)} such cells)"
                )
            array = np.log1p(array)
        return array, bad

    def fit(self, values: pd.Series, column: str = "numeric", on_bad_row: str = "error") -> NumericProcessor:
        if self.scaling not in ("auto", "standard", "robust", "quantile"):
            raise ConfigError(
                f"column {column!r}: scaling must be auto, standard, robust or quantile, got {self.scaling!r}"
            )
        finite, _ = self._prepare(values, column, on_bad_row)
        finite = np.clip(finite[~np.isnan(finite)], -_MAX_FIT_VALUE, _MAX_FIT_VALUE)
        if len(finite) == 0:
            finite = np.zeros(1)
        self.method_ = self.scaling if self.scaling != "auto" else _auto_scaling(finite)
        if self.method_ == "standard":
            center, scale = float(finite.mean()), float(finite.std())
        else:
            q25, center, q75 = (float(q) for q in np.percentile(finite, [25, 50, 75]))
            scale = q75 - q25
        self.center_ = center
        self.scale_ = scale if scale > 1e-12 else 1.0
        if self.method_ == "quantile":
            self.quantiles_ = np.percentile(finite, np.linspace(0, 100, 101)).tolist()
        return self

    @property
    def method(self) -> str:
        """The scaling applied: `method_`, or `scaling` for runs saved before "auto"."""
        return getattr(self, "method_", self.scaling)

    def _scale(self, array: np.ndarray) -> np.ndarray:
        if self.method != "quantile":
            return (array - self.center_) / self.scale_
        # Position among the training quantiles → standard-normal score.
        quantiles = np.asarray(self.quantiles_)
        unique, first = np.unique(quantiles, return_index=True)
        u = np.interp(array, unique, np.linspace(0, 1, len(quantiles))[first])
        u = np.clip(u, 0.001, 0.999)
        return torch.special.ndtri(torch.from_numpy(u)).numpy()

    def transform(self, values: pd.Series, column: str = "numeric", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        array, bad = self._prepare(values, column, on_bad_row)
        missing = np.isnan(array)
        scaled = np.clip(self._scale(np.where(missing, 0.0, array)), -_MAX_SCALED, _MAX_SCALED)
        scaled = np.where(missing, 0.0, scaled)
        features = np.stack([scaled, missing.astype(np.float64)], axis=1).astype(np.float32)
        return Encoded(torch.from_numpy(features), torch.ones(len(array), dtype=torch.bool), bad_rows=bad)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_features": 2}


def looks_like_code(values: pd.Series) -> bool:
    """Whether a numeric column may be a code rather than a quantity: integers with few
    distinct values (MAX_CODES), each seen CODE_MIN_ROWS times on average."""
    numbers = _numbers(values).to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = numbers[np.isfinite(numbers)]
    distinct = len(np.unique(numbers))
    return (
        2 < distinct <= MAX_CODES
        and len(numbers) >= CODE_MIN_ROWS * distinct
        and bool(np.all(numbers == np.round(numbers)))
    )


def _auto_scaling(finite: np.ndarray) -> str:
    """ "quantile" for a skewed sample (SKEW_THRESHOLD), else "standard"."""
    spread = finite.std()
    if len(finite) < 3 or spread < 1e-12:
        return "standard"
    skewness = float(np.mean(((finite - finite.mean()) / spread) ** 3))
    return "quantile" if abs(skewness) > SKEW_THRESHOLD else "standard"


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
        self, values: pd.Series, column: str = "category", on_bad_row: str = "error"
    ) -> CategoryProcessor:
        counts = Counter(k for k in category_keys(values) if k is not None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [k for k, n in ranked if n >= self.min_frequency][: self.max_categories]
        self.vocab_ = kept  # id = position + 1
        return self

    def transform(self, values: pd.Series, column: str = "category", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        lookup = {k: i + 1 for i, k in enumerate(self.vocab_)}
        keys = category_keys(values)
        ids = torch.tensor([lookup.get(k, 0) if k is not None else 0 for k in keys], dtype=torch.long)
        present = torch.tensor([k is not None for k in keys], dtype=torch.bool)
        return Encoded(ids, present)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"num_embeddings": len(self.vocab_) + 1}


class TabularProcessor(InputProcessor):
    """Several numeric and category columns as one input: (N, 2·n_numeric + n_category +
    n_code) float32 = [scaled value, missing flag] per numeric column, then each category
    column's id, then the value id of each numeric column read as a code too (exact in
    float32; the encoder casts ids back to int64).

    A numeric column's `code` option (preprocessing, default "auto": looks_like_code on
    the training rows) also gives it a category id per value, so that a zipcode or a
    store number gets an embedding per value beside its scaled number.
    """

    kind = "tabular"

    def __init__(
        self,
        numeric: dict[str, dict[str, Any]] | None = None,
        category: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.numeric = numeric or {}
        self.category = category or {}
        self._members: dict[str, InputProcessor] = {}
        self._codes: dict[str, CategoryProcessor] = {}  # numeric column → its value ids

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
        self, values: pd.DataFrame, column: str = "tabular", on_bad_row: str = "error"
    ) -> TabularProcessor:
        members: dict[str, InputProcessor] = {}
        codes: dict[str, CategoryProcessor] = {}
        for name, options in self.numeric.items():
            scaling = {k: v for k, v in options.items() if k != "code"}
            members[name] = NumericProcessor.create(scaling, name).fit(values[name], name, on_bad_row)
            code = options.get("code", "auto")
            if code not in ("auto", True, False):
                raise ConfigError(f"column {name!r}: code must be auto, true or false, got {code!r}")
            if code is True or (code == "auto" and looks_like_code(values[name])):
                # A value seen once gets no embedding of its own: the unknown bucket.
                codes[name] = CategoryProcessor(min_frequency=2).fit(values[name], name)
        for name, options in self.category.items():
            members[name] = CategoryProcessor.create(options, name).fit(values[name], name)
        self._members, self._codes = members, codes
        return self

    def transform(self, values: pd.DataFrame, column: str = "tabular", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        numeric = [self._members[n].transform(values[n], n, on_bad_row) for n in self.numeric]
        parts = [e.values for e in numeric]  # (N, 2) each
        ids = [(n, self._members[n]) for n in self.category] + list(self._codes.items())
        parts += [p.transform(values[n], n).values.float().unsqueeze(1) for n, p in ids]  # (N, 1) each
        bad = sorted({row for e in numeric for row in e.bad_rows})
        by_column = {n: e.bad_rows for n, e in zip(self.numeric, numeric, strict=True) if e.bad_rows}
        present = torch.ones(len(values), dtype=torch.bool)
        return Encoded(torch.cat(parts, dim=1), present, bad_rows=bad, bad_columns=by_column)

    @property
    def codes(self) -> list[str]:
        """The numeric columns also read as codes (fitted)."""
        return list(self._codes)

    def encoder_kwargs(self) -> dict[str, Any]:
        ids = [self._members[n] for n in self.category] + list(self._codes.values())
        return {
            "num_numeric": len(self.numeric),
            "category_sizes": [p.encoder_kwargs()["num_embeddings"] for p in ids],
        }

    def state(self) -> dict[str, Any]:
        self.check_fitted()
        members = {name: p.state() for name, p in self._members.items()}
        codes = {name: p.state() for name, p in self._codes.items()}
        return {
            "kind": self.kind,
            "params": self.get_params(),
            "fitted": {"members": members, "codes": codes},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularProcessor:
        obj = cls(**state["params"])
        kinds = {"numeric": NumericProcessor, "category": CategoryProcessor}
        obj._members = {
            name: kinds[member["kind"]].from_state(member)
            for name, member in state["fitted"]["members"].items()
        }
        # Runs saved before codes have none.
        obj._codes = {n: CategoryProcessor.from_state(c) for n, c in state["fitted"].get("codes", {}).items()}
        return obj

"""Processor base: scikit-learn conventions, JSON state, no pickles.

`__init__` stores parameters; `fit` validates and sets attributes ending in `_` and
returns `self`; `transform` refuses to run unfitted. `state()` is plain JSON (lists,
numbers, strings), so loading a run folder never executes code from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.errors import ConfigError

T = TypeVar("T")


@dataclass
class Encoded:
    """A transformed column. Row i is `values[index[i]]` (or `values[i]` without index).

    The index lets many rows share one stored item (easy-VQA: ~10 questions per image)
    without copying it.
    """

    values: Tensor
    present: Tensor  # (N,) bool: False where the cell was empty (missing modality)
    index: Tensor | None = None  # (N,) long into `values`
    # Positions (0-based, in this table) of unusable cells that were treated as missing
    # because on_bad_row was "missing" or "skip".
    bad_rows: list[int] = field(default_factory=list)
    # An input reading several columns (a tabular group): each column's unusable cells.
    bad_columns: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.present)

    def bad_cells(self, key: str) -> dict[str, list[int]]:
        """Unusable cells per table column, for the input `key` this column encodes."""
        if self.bad_columns:
            return self.bad_columns
        return {key: self.bad_rows} if self.bad_rows else {}

    def take(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        where = rows if self.index is None else self.index[rows]
        return self.values[where], self.present[rows]


class Processor:
    """Fit on the training split, transform any split, save as JSON."""

    kind: ClassVar[str]

    @classmethod
    def param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in params if p.name != "self" and p.kind in named]

    @classmethod
    def create(cls, params: dict[str, Any], column: str) -> Self:
        unknown = sorted(set(params) - set(cls.param_names()))
        if unknown:
            raise ConfigError(
                f"column {column!r}: unknown {cls.kind} preprocessing option(s) "
                f"{', '.join(unknown)}; valid: {', '.join(cls.param_names())}"
            )
        return cls(**params)

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def fit(self, values: pd.Series) -> Self:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        self.check_fitted()
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        return {"kind": self.kind, "params": self.get_params(), "fitted": fitted}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        obj = cls(**state["params"])
        for key, value in state["fitted"].items():
            setattr(obj, key, value)
        return obj


class InputProcessor(Processor):
    """Turns one input column into tensors for its encoder."""

    # Where relative media paths resolve: the table's folder, set for each table read
    # (a run's processors serve tables anywhere), so neither a parameter nor saved.
    base_dir: Path = Path(".")
    # Robustness evaluation only: applied to each decoded item (image, audio) before
    # preprocessing goes on; runtime state like `base_dir`, never saved.
    perturb: Callable[[Any], Any] | None = None

    @property
    def modality(self) -> str:
        """The kind of data read (image, audio, text, ...), whatever the processor."""
        return self.kind

    def select(self, frame: pd.DataFrame, key: str) -> pd.Series | pd.DataFrame:
        """The cells this processor reads for input `key` (one column by default)."""
        return frame[key]

    def source_columns(self, key: str) -> list[str]:
        return [key]

    def transform(self, values: pd.Series, column: str, on_bad_row: str = "error") -> Encoded:
        raise NotImplementedError

    def to_model(self, values: Tensor, training: bool) -> Tensor:
        """Per-batch step (normalisation, augmentation); identity by default."""
        return values

    def encoder_kwargs(self) -> dict[str, Any]:
        """Sizes the encoder needs from the data (vocabulary size, channels, ...)."""
        return {}


def is_empty(value: Any) -> bool:
    """An empty cell: None, NaN or a blank string."""
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like cells (Parquet lists) are not empty
        return False


def present_mask(values: pd.Series) -> Tensor:
    return torch.tensor([not is_empty(v) for v in values.tolist()], dtype=torch.bool)


def load_distinct(
    values: pd.Series, load: Callable[[str, int], T | None]
) -> tuple[list[T], Tensor, list[int]]:
    """Decode each distinct media file once (`load(path, row) -> item | None`).

    Returns the decoded items, an (N,) int64 index into `[placeholder, *items]` (0 for an
    empty or unreadable cell) and the positions of the unreadable cells. Rows naming
    the same file share one item.
    """
    slots: dict[str, int] = {}
    items: list[T] = []
    index = np.zeros(len(values), dtype=np.int64)
    bad_rows: list[int] = []
    for pos, (row, value) in enumerate(values.items()):
        if is_empty(value):
            continue
        key = str(value).strip()
        if key not in slots:
            item = load(key, int(row))
            slots[key] = 0 if item is None else len(items) + 1
            if item is not None:
                items.append(item)
        index[pos] = slots[key]
        if slots[key] == 0:
            bad_rows.append(pos)
    return items, torch.from_numpy(index), bad_rows

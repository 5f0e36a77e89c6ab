"""Retrieval target: which rows show the same item, per tower column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.processors.base import is_empty
from plait.data.processors.targets import TargetProcessor
from plait.errors import ConfigError


class PairTarget(TargetProcessor):
    """The tower columns' cells → (N, n_towers) int64 item ids.

    Rows whose cell holds the same value (the same image file, the same caption) show
    the same item, so they are positives of each other in the contrastive loss and
    one item in retrieval metrics. An empty cell is -1. Ids only compare rows of one
    table; nothing is learned but the tower list.
    """

    kind = "retrieval"

    def __init__(self, columns: list[str]) -> None:
        self.columns = list(columns)

    def select(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        return frame[self.columns]

    def source_columns(self, name: str) -> list[str]:
        return list(self.columns)

    def fit(self, values: pd.DataFrame, column: str = "retrieval") -> PairTarget:
        if len(set(self.columns)) < 2:
            raise ConfigError(
                f"retrieval {column!r} needs two or more different columns, got {', '.join(self.columns)}"
            )
        self.towers_ = list(self.columns)
        return self

    def transform(self, values: pd.DataFrame, column: str = "retrieval") -> Tensor:  # type: ignore[override]
        self.check_fitted()
        ids = []
        for name in self.columns:
            keys = pd.Series(
                [None if is_empty(v) else str(v).strip() for v in values[name].tolist()], dtype=object
            )
            ids.append(pd.factorize(keys, use_na_sentinel=True)[0])  # None → -1
        return torch.from_numpy(np.stack(ids, axis=1).astype(np.int64))  # (N, n)

    def head_kwargs(self) -> dict[str, Any]:
        return {"towers": list(self.columns)}

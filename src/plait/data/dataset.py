"""A table, transformed once by fitted processors, served as whole batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from plait.data.collate import Batch
from plait.data.processors import Encoded, InputProcessor, TargetProcessor


class TableDataset(Dataset[Batch]):
    """Rows of a table as tensors: every column is transformed up front (decode,
    tokenise, scale) so an epoch only gathers rows and runs the cheap per-batch
    step (image normalisation and augmentation).

    `__getitems__` returns a whole `Batch` for a list of row indices, so the
    DataLoader does one vectorised gather per batch instead of per-row dicts.
    """

    def __init__(
        self,
        columns: Mapping[str, Encoded],
        processors: Mapping[str, InputProcessor],
        targets: Mapping[str, Tensor] | None = None,
        training: bool = False,
    ) -> None:
        self.columns = dict(columns)
        self.processors = dict(processors)
        self.targets = dict(targets or {})
        self.training = training
        self._len = len(next(iter(self.columns.values())))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        processors: Mapping[str, InputProcessor],
        target_processors: Mapping[str, TargetProcessor] | None = None,
        training: bool = False,
        base_dir: Path | None = None,
        on_bad_file: str = "error",
    ) -> TableDataset:
        columns: dict[str, Encoded] = {}
        for name, processor in processors.items():
            if base_dir is not None:
                processor.base_dir = base_dir
            columns[name] = processor.transform(processor.select(frame, name), name, on_bad_file=on_bad_file)
        targets = {n: p.transform(frame[n], n) for n, p in (target_processors or {}).items()}
        return cls(columns, processors, targets, training)

    def __len__(self) -> int:
        return self._len

    @property
    def bad_files(self) -> dict[str, int]:
        """Column → unreadable media files treated as missing."""
        return {name: c.bad_files for name, c in self.columns.items() if c.bad_files}

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        rows = torch.as_tensor(indices, dtype=torch.long)
        inputs, present = {}, {}
        for name, column in self.columns.items():
            values, present[name] = column.take(rows)
            inputs[name] = self.processors[name].to_model(values, self.training)
        targets = {name: t[rows] for name, t in self.targets.items()}
        return Batch(inputs, present, targets, rows)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([index])

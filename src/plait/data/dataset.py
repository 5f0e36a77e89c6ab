"""A table, transformed once by fitted processors, served as whole batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from plait.data.collate import Batch
from plait.data.decode_cache import cached_transform
from plait.data.processors import Encoded, ImageProcessor, InputProcessor, TargetProcessor, TextTarget
from plait.data.processors.base import is_empty


class TableDataset(Dataset[Batch]):
    """Rows of a table as tensors: every column is transformed up front (decode,
    tokenise, scale) so an epoch only gathers rows and runs the cheap per-batch
    step (image normalisation and augmentation).

    `__getitems__` returns a whole `Batch` for a list of row indices, so the
    DataLoader does one vectorised gather per batch instead of per-row dicts.
    With `skip_bad_rows`, rows holding an unusable cell are left out (and counted).
    """

    def __init__(
        self,
        columns: Mapping[str, Encoded],
        processors: Mapping[str, InputProcessor],
        targets: Mapping[str, Tensor] | None = None,
        training: bool = False,
        skip_bad_rows: bool = False,
        target_texts: Mapping[str, list[str]] | None = None,
        drawn_on: Mapping[str, str] | None = None,
    ) -> None:
        self.columns = dict(columns)
        # Text targets as strings (unknown words kept), the references generation is scored on.
        self.target_texts = dict(target_texts or {})
        self.processors = dict(processors)
        self.targets = dict(targets or {})
        self.training = training
        # Box targets → the image input they are drawn on (augmented together).
        self.drawn_on = dict(drawn_on or {})
        n_rows = len(next(iter(self.columns.values())))
        self.bad_rows = sorted({r for c in self.columns.values() for r in c.bad_rows})
        keep = torch.ones(n_rows, dtype=torch.bool)
        if skip_bad_rows:
            keep[self.bad_rows] = False
        self.keep = keep.nonzero().squeeze(1)  # (n_kept,) positions in the table
        self.skip = skip_bad_rows

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        processors: Mapping[str, InputProcessor],
        target_processors: Mapping[str, TargetProcessor] | None = None,
        training: bool = False,
        base_dir: Path | None = None,
        on_bad_row: str = "error",
        cache: bool = False,
    ) -> TableDataset:
        """`cache`: read decoded image/audio/text columns from the on-disk decode cache
        (data/decode_cache.py) when this table was transformed before, else store them."""
        columns: dict[str, Encoded] = {}
        for name, processor in processors.items():
            if base_dir is not None:
                processor.base_dir = base_dir
            cells = processor.select(frame, name)
            columns[name] = cached_transform(processor, cells, name, on_bad_row, enabled=cache)  # type: ignore[arg-type]
        drawn_on = {}
        for n, p in (target_processors or {}).items():
            if (image := p.image_input()) is not None:
                drawn_on[n] = image
                if base_dir is not None:
                    p.base_dir = base_dir  # type: ignore[attr-defined]  (box targets read image sizes)
        targets = {n: p.transform(p.select(frame, n), n) for n, p in (target_processors or {}).items()}
        texts = {
            n: p.normalise(frame[n])
            for n, p in (target_processors or {}).items()
            if isinstance(p, TextTarget)
        }
        return cls(columns, processors, targets, training, on_bad_row == "skip", texts, drawn_on)

    def input_groups(self) -> list[tuple]:
        """Per kept row, a key equal for rows with the same inputs (same files, same text)."""
        keys = []
        for column in self.columns.values():
            if column.index is not None:
                keys.append(column.index[self.keep].tolist())
            else:
                values = column.values[self.keep].reshape(len(self.keep), -1).numpy()
                keys.append([row.tobytes() for row in values])
        return list(zip(*keys, strict=True))

    def __len__(self) -> int:
        return len(self.keep)

    @property
    def n_rows(self) -> int:
        """Rows served (as for a streamed table, whose `len` counts batches)."""
        return len(self.keep)

    def target_values(self, target: str) -> Tensor:
        """The target's transformed values of the kept rows, in table order."""
        return self.targets[target][self.keep]

    @property
    def skipped(self) -> int:
        """Rows left out for holding an unusable cell."""
        return len(self.bad_rows) if self.skip else 0

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        rows = self.keep[torch.as_tensor(indices, dtype=torch.long)]
        inputs, present = {}, {}
        targets = {name: t[rows] for name, t in self.targets.items()}
        carried = {image: target for target, image in self.drawn_on.items()}
        for name, column in self.columns.items():
            values, present[name] = column.take(rows)
            processor = self.processors[name]
            if name in carried and isinstance(processor, ImageProcessor):  # boxes move with the pixels
                inputs[name], targets[carried[name]] = processor.to_model_with_boxes(
                    values, targets[carried[name]], self.training
                )
            else:
                inputs[name] = processor.to_model(values, self.training)
        return Batch(inputs, present, targets, rows)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([index])


def unusable_cells(parts: Iterable[object]) -> dict[str, int]:
    """Unusable cells (an unreadable file, text in a number column) per table column over
    the parts of one table, whether treated as missing or their rows skipped. Counted as
    the parts were transformed: a streamed part, transformed batch by batch, adds none."""
    counts: dict[str, int] = {}
    for part in parts:
        if isinstance(part, TableDataset):
            for key, column in part.columns.items():
                for name, rows in column.bad_cells(key).items():
                    counts[name] = counts.get(name, 0) + len(rows)
    return counts


def missing_rate(cells: pd.Series, unusable: int = 0) -> float:
    """Share of a column's cells the model goes without: the empty ones and the `unusable`
    ones (never empty, so never counted twice)."""
    return (int(cells.map(is_empty).sum()) + unusable) / len(cells) if len(cells) else 0.0

"""A streamed table read back whole, for evaluation and prediction (plait.predictor).

Loader workers each stream their own row groups, so batches arrive interleaved;
`in_table_order` puts the model's outputs back in table order, holding only the
batches that ran ahead of the slowest worker. Id columns are read on their own, row
group by row group, as the ordered rows go out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.processors.text_target import PAD
from plait.data.schema import check_columns
from plait.data.streaming import Shards
from plait.errors import DataError

Outputs = dict[str, Tensor]


def check_shard_columns(shards: Shards, wanted: Mapping[str, Iterable[str]]) -> None:
    """Every shard holds the columns `wanted` names ({"input": [...], "label": [...]}):
    checked on the footers before any row is read, so a shard that lacks one is named
    at once rather than met half-way through the table."""
    for i in range(len(shards.paths)):
        columns = pd.DataFrame(columns=shards.open(i).schema_arrow.names)
        try:
            for what, names in wanted.items():
                check_columns(columns, dict.fromkeys(names), what, needed=what in ("input", "label"))
        except DataError as err:
            raise DataError(f"shard {shards.name(i)}: {err}") from None


def in_table_order(
    batches: Iterable[tuple[Tensor, Outputs]], min_rows: int
) -> Iterator[tuple[int, int, Outputs]]:
    """(rows (B,), outputs) batches as the loader delivers them → (first row, row count,
    outputs) for consecutive rows in table order, at least `min_rows` at a time (fewer
    at the end). Every row must come exactly once; each worker's rows rise, so only the
    runs ahead of the slowest worker wait."""
    waiting: dict[int, tuple[int, Outputs]] = {}  # first row of a run → (rows, its outputs)
    ready: list[Outputs] = []  # the next runs in order, not yet handed out
    start = next_row = 0
    for rows, outputs in batches:
        position = rows.numpy()
        # A batch may span row groups: cut it into runs of consecutive rows.
        cuts = (np.flatnonzero(np.diff(position) != 1) + 1).tolist()
        for a, b in zip([0, *cuts], [*cuts, len(position)], strict=True):
            waiting[int(position[a])] = (b - a, {t: o[a:b] for t, o in outputs.items()})
        while next_row in waiting:
            n, run = waiting.pop(next_row)
            ready.append(run)
            next_row += n
        if ready and next_row - start >= min_rows:
            yield start, next_row - start, _joined(ready)
            start, ready = next_row, []
    if waiting:  # a row never came: a bug in the streaming plan, not in the data
        raise RuntimeError(f"rows from {next_row} were not all streamed ({len(waiting)} run(s) left)")
    if ready:
        yield start, next_row - start, _joined(ready)


class IdColumns:
    """The id columns of a streamed table (those its first shard holds), read alone for
    rows handed out in table order; the last row group read is kept, so a row group
    bigger than a chunk of rows is read once."""

    def __init__(self, shards: Shards, wanted: Iterable[str]) -> None:
        present = set(shards.open(0).schema_arrow.names)
        self.shards = shards
        self.names = [c for c in wanted if c in present]
        self._starts = [u.first for u in shards.units]
        self._cached: tuple[int, pd.DataFrame] | None = None

    def rows(self, first: int, n: int) -> pd.DataFrame:
        """(n, id columns) of rows first … first + n - 1, indexed by table position."""
        if not self.names:
            return pd.DataFrame(index=pd.RangeIndex(first, first + n))
        parts, unit = [], bisect_right(self._starts, first) - 1
        while unit < len(self._starts) and self._starts[unit] < first + n:
            parts.append(self._read(unit))
            unit += 1
        frame = pd.concat(parts) if len(parts) > 1 else parts[0]
        return frame.loc[first : first + n - 1]

    def _read(self, unit: int) -> pd.DataFrame:
        if self._cached is None or self._cached[0] != unit:
            self._cached = (unit, self.shards.read(self.shards.units[unit], self.names))
        return self._cached[1]


def _joined(runs: list[Outputs]) -> Outputs:
    """Runs → one tensor per output; generated ids (n, L) are padded to the longest L."""
    if len(runs) == 1:
        return runs[0]
    joined = {}
    for t in runs[0]:
        parts = [r[t] for r in runs]
        if parts[0].dtype == torch.long and parts[0].dim() == 2:
            width = max(p.shape[1] for p in parts)
            parts = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=PAD) for p in parts]
        joined[t] = torch.cat(parts)
    return joined

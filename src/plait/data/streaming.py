"""Tables bigger than memory: a folder (or any fsspec URL) of Parquet shards, streamed.

The unit of work is one row group of one shard. Each epoch the units are shuffled
(seeded by seed and epoch) and dealt round-robin to the consumers (DDP rank × loader
worker), so every worker reads its own shards' row groups and nothing is read twice.
A consumer transforms a row group with the fitted processors (through the same
`TableDataset` the in-memory path uses) and draws random batches from a buffer of
about `buffer_rows` transformed rows. Memory is bounded by the buffer and one row
group per consumer, whatever the table's size.

Splits need no pass over the media: with a split column its values decide (read as
one column); otherwise a row is in validation when a generator seeded by
(seed, shard, row group) says so, which is the same every epoch and in every process.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from plait.data.collate import Batch, identity_collate
from plait.data.datamodule import SPLIT_ALIASES, default_workers, return_freed_buffers
from plait.data.dataset import TableDataset
from plait.data.paths import data_root, set_data_root
from plait.data.processors import InputProcessor, TargetProcessor
from plait.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
PARTS = ("train", "val", "test")


def is_shard_source(data: object) -> bool:
    """A local folder of Parquet files, or a URL (`s3://…`, `file://…`, `memory://…`)."""
    if not isinstance(data, (str, Path)):
        return False
    text = str(data)
    return "://" in text or Path(text).is_dir()


@dataclass
class Unit:
    """One row group of one shard: the piece of work a consumer reads at once."""

    shard: int
    group: int
    start: int  # first row of the group within its shard (0-based)
    rows: int
    first: int  # its first row's position in the whole table (shards in name order)


@dataclass
class Shards:
    """The shard files of a streamed table and their row groups (from the footers)."""

    fs: fsspec.AbstractFileSystem
    paths: list[str]
    units: list[Unit]
    base_dir: Path  # where relative media paths resolve (the folder, when local)
    source: str
    # Per part, rows in each unit, and whether validation rows are carved at random
    # (no split column names any): both set by `label_pass`.
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    carve: bool = True

    @property
    def rows(self) -> int:
        return sum(u.rows for u in self.units)

    def name(self, shard: int) -> str:
        return PurePosixPath(self.paths[shard]).name

    def open(self, shard: int) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.fs.open(self.paths[shard], "rb"))
        except Exception as err:  # pyarrow and fsspec raise many types for one cause
            raise DataError(f"cannot read shard {self.paths[shard]}: {_line(err)}") from None

    def read(self, unit: Unit, columns: list[str] | None = None) -> pd.DataFrame:
        """The unit's rows; the index is each row's position in the whole table (shards
        in name order), so messages number rows as for one table."""
        frame = self.open(unit.shard).read_row_group(unit.group, columns=columns).to_pandas()
        frame.columns = [str(c) for c in frame.columns]
        frame.index = pd.RangeIndex(unit.first, unit.first + len(frame))
        return frame

    def sample(self, rows: int, seed: int) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
        """About `rows` rows: the first rows of row groups visited in random order, and
        (unit, rows taken) for each group read, in the frame's order."""
        rng = np.random.default_rng(seed)
        per_unit = max(1, math.ceil(rows / len(self.units)))
        frames, taken = [], []
        for u in rng.permutation(len(self.units)).tolist():
            frame = self.read(self.units[u]).iloc[:per_unit]
            frames.append(frame)
            taken.append((u, len(frame)))
            if sum(n for _, n in taken) >= rows:
                break
        return pd.concat(frames), taken

    def sample_parts(
        self,
        sample: pd.DataFrame,
        taken: list[tuple[int, int]],
        split_column: str | None,
        val_fraction: float,
        seed: int,
    ) -> np.ndarray:
        """(len(sample),) part of each sampled row, as `unit_parts` assigns it when streaming."""
        out, at = [], 0
        for u, n in taken:
            split = sample[split_column].iloc[at : at + n] if split_column else None
            out.append(unit_parts(self, u, split, val_fraction, seed, self.carve)[:n])
            at += n
        return np.concatenate(out)

    def fingerprint(self) -> dict[str, object]:
        """sha256 over the shards' names and bytes (read in 1 MiB chunks), for plait.json.
        Media files that cells name by path are not read (raw bytes in cells are)."""
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(f"{PurePosixPath(path).name}\0".encode())
            with self.fs.open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        return {"sha256": digest.hexdigest(), "rows": self.rows, "shards": len(self.paths)}


def open_shards(data: str | Path, base_dir: str | Path | None = None) -> Shards:
    """List the Parquet files under `data` (a folder or fsspec URL) and their row groups."""
    text = str(data)
    try:
        fs, root = fsspec.core.url_to_fs(text)
        found = fs.find(root) if fs.isdir(root) else []
    except Exception as err:  # unknown protocol, missing driver, unreachable store
        raise DataError(f"cannot list shards at {text}: {_line(err)}") from None
    if not found and not fs.exists(root):
        raise DataError(f"table folder not found: {text}")
    paths = sorted(p for p in found if p.lower().endswith(PARQUET_SUFFIXES))
    if not paths:
        raise DataError(f"no Parquet files (.parquet, .pq) in {text}")
    shards = Shards(fs, paths, [], Path("."), text)
    total = 0
    for i in range(len(paths)):
        meta = shards.open(i).metadata
        start = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if n:
                shards.units.append(Unit(i, g, start, n, total))
            start += n
            total += n
    if not shards.units:
        raise DataError(f"table {text} is empty (no rows in {len(paths)} shard(s))")
    local = "://" not in text or text.startswith("file://")
    shards.base_dir = Path(base_dir or (root if local else ".")).resolve()
    return shards


def unit_parts(
    shards: Shards, unit: int, split: pd.Series | None, val_fraction: float, seed: int, carve: bool
) -> np.ndarray:
    """(rows,) part of each row of a unit: 0 train, 1 val, 2 test, -1 neither. With
    `carve` (no split column names validation rows), validation rows are drawn from the
    training rows by a generator seeded by (seed, shard, group): the same every epoch
    and in every process."""
    u = shards.units[unit]
    if split is not None:  # all the unit's rows, or its first len(split) rows (a sample)
        named = split.astype(str).str.strip().str.lower().map(SPLIT_ALIASES)
        parts = named.map({"train": 0, "val": 1, "test": 2}).fillna(-1).to_numpy(dtype=np.int64, copy=True)
    else:
        parts = np.zeros(u.rows, dtype=np.int64)
    if carve:
        drawn = np.random.default_rng([seed, u.shard, u.group]).random(u.rows)[: len(parts)] < val_fraction
        parts[(parts == 0) & drawn] = 1
    return parts


@dataclass
class LabelPass:
    """What one pass over the label and split columns learns: rows per unit and part,
    and every distinct label of each target (so no rare class is missed by the sample)."""

    counts: dict[str, np.ndarray]
    labels: dict[str, pd.Series]


def label_pass(
    shards: Shards,
    targets: list[str],
    split_column: str | None,
    val_fraction: float,
    seed: int,
    check_missing: list[str],
) -> LabelPass:
    """Read only the label and split columns of every row group (no media): count the
    rows of each part, collect distinct labels and refuse a missing label by shard and row."""
    named = {p: np.zeros(len(shards.units), dtype=np.int64) for p in PARTS}
    carved = {p: np.zeros(len(shards.units), dtype=np.int64) for p in PARTS}
    seen: dict[str, dict[str, object]] = {t: {} for t in targets}
    columns = list(dict.fromkeys([*targets, *([split_column] if split_column else [])]))
    for i, unit in enumerate(shards.units):
        frame = shards.read(unit, columns) if columns else pd.DataFrame(index=range(unit.rows))
        split = frame[split_column] if split_column else None
        for counts, carve in ((named, False), (carved, True)):
            parts = unit_parts(shards, i, split, val_fraction, seed, carve)
            for p, name in enumerate(PARTS):
                counts[name][i] = int((parts == p).sum())
        for t in targets:
            values = frame[t]
            if t in check_missing:
                empty = values.isna() | values.astype(str).str.strip().eq("")
                if empty.any():
                    rows = ", ".join(str(r + 1) for r in values.index[empty][:5])
                    raise DataError(
                        f"label column {t!r} is empty in row(s) {rows} (shard {shards.name(unit.shard)}); "
                        "drop or fill those rows"
                    )
            for v in values.dropna().tolist():
                key = str(v.tolist() if hasattr(v, "tolist") else v)
                seen[t].setdefault(key, v)
    shards.carve = not named["val"].any()
    shards.counts = carved if shards.carve else named
    if not shards.counts["train"].any():
        raise DataError(f"table {shards.source} has no training rows")
    return LabelPass(shards.counts, {t: pd.Series(list(s.values()), dtype=object) for t, s in seen.items()})


def every_row(shards: Shards) -> str:
    """One part holding every row, for evaluation and prediction (nothing is split off);
    returns its name for `StreamingDataset`. No split column and no carving put every
    row in part 0, so no pass over the table is needed: the footers gave the counts."""
    shards.carve = False
    shards.counts = {PARTS[0]: np.array([u.rows for u in shards.units], dtype=np.int64)}
    return PARTS[0]


def rank_and_world() -> tuple[int, int]:
    """(this process's global rank, how many processes): from the environment every
    launcher sets (Lightning, torchrun, SLURM), so loader workers know it too."""
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) or 0)
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")) or 1)
    return rank, world


def consumer() -> tuple[int, int]:
    """(this consumer's number, how many there are): DDP rank × loader worker."""
    rank, world = rank_and_world()
    info = get_worker_info()
    workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
    return rank * workers + worker, world * workers


class StreamingDataset(IterableDataset[Batch]):
    """One part (train, val or test) of a sharded table, as whole batches.

    Training shuffles by unit and through the buffer, drops each consumer's last
    partial batch, and gives every DDP rank the same number of batches (the plan is
    computed from row counts alone, identically in every process). Evaluation keeps
    table order within each consumer and every row.
    """

    def __init__(
        self,
        shards: Shards,
        part: str,
        processors: Mapping[str, InputProcessor],
        targets: Mapping[str, TargetProcessor] | None,
        batch_size: int,
        training: bool = False,
        seed: int = 0,
        val_fraction: float = 0.1,
        split_column: str | None = None,
        on_bad_row: str = "error",
        buffer_rows: int = 4096,
        workers: int = 0,
        cache: bool = False,
    ) -> None:
        self.shards, self.part = shards, part
        self.processors, self.targets = dict(processors), dict(targets or {})
        self.batch_size, self.training, self.seed = batch_size, training, seed
        self.val_fraction, self.split_column, self.on_bad_row = val_fraction, split_column, on_bad_row
        self.buffer_rows = max(buffer_rows, batch_size)
        self.workers = workers  # the loader's, so every process can plan every consumer
        # Decoded row groups go to the on-disk decode cache on the first epoch and are
        # read back from it on the next ones (data/decode_cache.py).
        self.cache = cache
        # The --data-root in force here, re-applied in the loader workers (started
        # fresh, they do not inherit it).
        self.data_root = data_root()
        self.counts = shards.counts[part]
        self.epoch = 0
        # Counted per consumer, not gathered across loader workers: whoever needs the
        # whole count adds up the batches' `unusable` masks.
        self.bad_rows: list[int] = []

    @property
    def n_rows(self) -> int:
        return int(self.counts.sum())

    def _plan(self, epoch: int) -> tuple[list[list[int]], list[int]]:
        """Units of each consumer and how many batches each may yield this epoch."""
        world = rank_and_world()[1]
        workers = max(1, self.workers)
        n = world * workers
        units = [u for u in range(len(self.counts)) if self.counts[u]]
        if self.training:
            units = [units[i] for i in np.random.default_rng([self.seed, epoch]).permutation(len(units))]
        mine = [units[c::n] for c in range(n)]
        rows = [int(self.counts[m].sum()) if m else 0 for m in mine]
        if not self.training:
            return mine, [math.ceil(r / self.batch_size) for r in rows]
        caps = [r // self.batch_size for r in rows]  # full batches only
        if world > 1:  # every rank the same number of batches, or DDP waits forever
            per_rank = [caps[r * workers : (r + 1) * workers] for r in range(world)]
            least = min(sum(c) for c in per_rank)
            for c in per_rank:
                while sum(c) > least:
                    c[int(np.argmax(c))] -= 1
            caps = [x for c in per_rank for x in c]
        return mine, caps

    def __len__(self) -> int:
        """Batches this process yields per epoch (all its workers together)."""
        rank = rank_and_world()[0]
        workers = max(1, self.workers)
        _, caps = self._plan(0)
        return max(1, sum(caps[rank * workers : (rank + 1) * workers]))

    def __iter__(self) -> Iterator[Batch]:
        if self.data_root is not None and data_root() != self.data_root:
            set_data_root(self.data_root)
        me, _ = consumer()
        epoch = self.epoch
        self.epoch += 1  # each worker (persistent) and the main process count their own passes
        units, caps = self._plan(epoch)
        rng = np.random.default_rng([self.seed, epoch, me, 1])
        yield from self._batches(units[me], caps[me], rng)

    def _batches(self, units: list[int], cap: int, rng: np.random.Generator) -> Iterator[Batch]:
        """Up to `cap` batches from `units`. Rows wait in `pool` (raw, as processors store
        them: uint8 pixels, token ids); `avail` lists the ones not yet served. The pool is
        compacted and refilled only when half of it has been served, so each row is copied
        about twice, whatever the batch size."""
        pool: Batch | None = None
        avail = np.empty(0, dtype=np.int64)
        pending = list(units)
        low = self.buffer_rows // 2 if self.training else self.batch_size
        for _ in range(cap):
            if len(avail) < low and pending:
                chunks = [] if pool is None else [_select(pool, torch.from_numpy(avail))]
                held = len(avail)
                while pending and held < self.buffer_rows:
                    chunk = self._transform(pending.pop(0))
                    if chunk is not None:
                        chunks.append(chunk)
                        held += len(chunk)
                pool = cat_batches(chunks) if chunks else None
                avail = rng.permutation(held) if self.training else np.arange(held)
            if pool is None or len(avail) == 0 or (self.training and len(avail) < self.batch_size):
                return  # out of rows (only after skipped bad rows, for training)
            take, avail = avail[: self.batch_size], avail[self.batch_size :]
            yield self._to_model(_select(pool, torch.from_numpy(take)))

    def _to_model(self, raw: Batch) -> Batch:
        """The per-batch step (normalisation, augmentation), as TableDataset does it."""
        inputs = {k: self.processors[k].to_model(v, self.training) for k, v in raw.inputs.items()}
        return Batch(inputs, raw.present, raw.targets, raw.rows, raw.unusable)

    def _transform(self, unit: int) -> Batch | None:
        """The unit's rows of this part, decoded and tokenised but not yet normalised."""
        u = self.shards.units[unit]
        frame = self.shards.read(u)
        split = frame[self.split_column] if self.split_column else None
        parts = unit_parts(self.shards, unit, split, self.val_fraction, self.seed, self.shards.carve)
        frame = frame[parts == PARTS.index(self.part)]
        if frame.empty:
            return None
        try:
            data = TableDataset.from_frame(
                frame,
                self.processors,
                self.targets,
                training=self.training,
                base_dir=self.shards.base_dir,
                on_bad_row=self.on_bad_row,
                cache=self.cache,
            )
        except DataError as err:
            raise DataError(f"shard {self.shards.name(u.shard)}: {err}") from None
        self.bad_rows.extend(int(frame.index[r]) for r in data.bad_rows)
        if len(data) == 0:
            return None
        rows = data.keep
        inputs, present = {}, {}
        for name, column in data.columns.items():
            inputs[name], present[name] = column.take(rows)
        targets = {name: t[rows] for name, t in data.targets.items()}
        unusable = torch.zeros(len(frame), dtype=torch.bool)
        unusable[data.bad_rows] = True  # all left out again by `rows` when skipping
        index = torch.as_tensor(frame.index.to_numpy().copy())
        return Batch(inputs, present, targets, index[rows], unusable[rows])

    def target_values(self, target: str) -> Tensor:
        """The target's transformed values over this part, reading only its column."""
        proc = self.targets[target]
        split_column = [self.split_column] if self.split_column else []
        columns = list(dict.fromkeys([*proc.source_columns(target), *split_column]))
        parts = []
        for i, u in enumerate(self.shards.units):
            if not self.counts[i]:
                continue
            frame = self.shards.read(u, columns)
            split = frame[self.split_column] if self.split_column else None
            parts_ = unit_parts(self.shards, i, split, self.val_fraction, self.seed, self.shards.carve)
            keep = parts_ == PARTS.index(self.part)
            parts.append(proc.transform(proc.select(frame[keep], target), target))
        return torch.cat(parts)


def cat_batches(batches: list[Batch]) -> Batch:
    """One batch from several (same columns; fixed-size tensors, as processors make them)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    rows, unusable = [b.rows for b in batches], [b.unusable for b in batches]
    return Batch(
        {k: torch.cat([b.inputs[k] for b in batches]) for k in first.inputs},
        {k: torch.cat([b.present[k] for b in batches]) for k in first.present},
        {k: torch.cat([b.targets[k] for b in batches]) for k in first.targets},
        torch.cat(rows) if all(r is not None for r in rows) else None,  # type: ignore[arg-type]
        torch.cat(unusable) if all(u is not None for u in unusable) else None,  # type: ignore[arg-type]
    )


def _select(batch: Batch, rows: Tensor) -> Batch:
    return Batch(
        {k: v[rows] for k, v in batch.inputs.items()},
        {k: v[rows] for k, v in batch.present.items()},
        {k: v[rows] for k, v in batch.targets.items()},
        None if batch.rows is None else batch.rows[rows],
        None if batch.unusable is None else batch.unusable[rows],
    )


def stream_workers(num_workers: int | str) -> int:
    """Loader workers for a streamed table: as asked, else `default_workers(streaming=True)`."""
    return default_workers(streaming=True) if num_workers == "auto" else int(num_workers)


def stream_loader(dataset: StreamingDataset) -> DataLoader:
    """Batches come whole from the dataset; workers (if any) each read their own units."""
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=dataset.workers,
        collate_fn=identity_collate,
        persistent_workers=dataset.workers > 0,
        worker_init_fn=return_freed_buffers if dataset.workers > 0 else None,
        # Workers start from a small server process, not as forks of the trainer: a
        # fork shares the trainer's ~1 GiB, but Python's reference counting copies
        # those pages one by one over a long run, so each worker would grow towards
        # the trainer's size (measured: bench/streaming.py).
        multiprocessing_context="forkserver" if dataset.workers > 0 else None,
    )


def _line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__

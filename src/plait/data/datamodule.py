"""Splits and loaders: train / validation / test from one table."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from plait.data.collate import identity_collate
from plait.data.dataset import TableDataset
from plait.data.order import ResumableLoader
from plait.data.processors.base import is_empty
from plait.errors import DataError

SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


def split_frame(
    frame: pd.DataFrame,
    split_column: str | None,
    val_fraction: float,
    seed: int,
    group_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test). A split column decides where it can; validation rows are
    otherwise carved at random (seeded) from the training rows. With `group_column`,
    rows sharing its value (one image's five captions) go to the same side, so
    validation never shows an item seen in training."""
    if split_column is not None:
        split = frame[split_column].astype(str).str.strip().str.lower().map(SPLIT_ALIASES)
        train, val, test = (frame[split == s] for s in ("train", "val", "test"))
    else:
        train, val, test = frame, frame.iloc[:0], frame.iloc[:0]
    if len(val) == 0:
        if len(train) < 2:
            raise DataError(f"need at least 2 training rows, got {len(train)}")
        rng = np.random.default_rng(seed)
        n_val = min(len(train) - 1, max(1, round(val_fraction * len(train))))
        if group_column is None:
            in_val = np.zeros(len(train), dtype=bool)
            in_val[rng.permutation(len(train))[:n_val]] = True
        else:
            in_val = _grouped_rows(train[group_column], n_val, rng)
        # Kept in table order (the loader shuffles), so messages name the first bad row.
        val, train = train[in_val], train[~in_val]
    return train, val, test


def _grouped_rows(groups: pd.Series, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) bool: whole groups, in random order, until about `n_val` rows are taken
    (at least one group, and never every group). Empty cells are groups of one."""
    keys = [f"\x00row{i}" if is_empty(v) else str(v).strip() for i, v in enumerate(groups.tolist())]
    codes, uniques = pd.factorize(pd.Series(keys))
    sizes = np.bincount(codes)
    order = rng.permutation(len(uniques))
    taken = order[: max(1, min(len(order) - 1, int(np.searchsorted(np.cumsum(sizes[order]), n_val)) + 1))]
    return np.isin(codes, taken)


def default_workers(streaming: bool) -> int:
    """DataLoader workers for `num_workers: auto`.

    In-memory tables: 0. Decoding is done before training, so a batch is one vectorised
    gather plus normalisation (about 1 ms for 64 easy-VQA rows); a worker process costs
    more in pickling the batch back than it saves, and on few cores it competes with
    the model for them (bench/throughput.py, docs/benchmarks.md: 2 workers were slower
    than 0 on 2 cores). Streamed data decodes per batch: a few workers, leaving one
    core to the training loop.
    """
    if not streaming:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(4, cores - 1))


# glibc's mallopt parameter number for M_MMAP_THRESHOLD, and the value a worker sets.
M_MMAP_THRESHOLD = -3
WORKER_MMAP_THRESHOLD = 1 << 20


def return_freed_buffers(worker_id: int = 0) -> bool:
    """Loader worker start: freed buffers of 1 MiB or more go back to the system at once.

    glibc serves a block above its mmap threshold (128 KiB at start) with a mapping of
    its own, unmapped when freed, but raises the threshold to the size of each such
    block freed (up to 32 MiB). After a worker's first batch its batch-sized tensors
    (an evaluation batch of 512 rows of 3×64×64 float32 is 25 MiB, made three times
    by the normalisation) then come from the heap, which fragmentation keeps from
    shrinking: +72 MiB per batch, 0.7 → 1.6 GiB over the 20 validation batches of a
    100,000-row table (bench/streaming.py). Setting the threshold turns that off.
    False where the C library is not glibc (nothing to do)."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD))


def make_loader(
    dataset: TableDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int | Literal["auto"] = "auto",
    pin_memory: bool = False,
    seed: int = 0,
    resumable: bool = True,
) -> DataLoader:
    """Batches come whole from `TableDataset.__getitems__`, so the collate is the identity.
    `pin_memory`: page-locked batches for faster, asynchronous copies to a CUDA device.
    Shuffled loaders draw each epoch's order from (seed, epoch) and can resume mid-epoch;
    not under DDP (`resumable=False`), where Lightning puts its DistributedSampler in."""
    workers = default_workers(streaming=False) if num_workers == "auto" else num_workers
    options: dict[str, Any] = {
        # Its own generator for the workers' base seed: creating an iterator then draws
        # nothing from the global RNG, so a run resumed mid-epoch draws what the
        # uninterrupted one did.
        "generator": torch.Generator().manual_seed(seed),
        "num_workers": workers,
        "collate_fn": identity_collate,
        "persistent_workers": workers > 0,
        "worker_init_fn": return_freed_buffers if workers > 0 else None,
        "pin_memory": pin_memory,
    }
    if shuffle and resumable:
        return ResumableLoader(dataset, batch_size, seed, **options)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **options)

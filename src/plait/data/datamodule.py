"""Splits and loaders: train / validation / test from one table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from plait.data.collate import identity_collate
from plait.data.dataset import TableDataset
from plait.errors import DataError

_SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


def split_frame(
    frame: pd.DataFrame, split_column: str | None, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test). A split column decides where it can; validation rows are
    otherwise carved at random (seeded) from the training rows."""
    if split_column is not None:
        split = frame[split_column].astype(str).str.strip().str.lower().map(_SPLIT_ALIASES)
        train, val, test = (frame[split == s] for s in ("train", "val", "test"))
    else:
        train, val, test = frame, frame.iloc[:0], frame.iloc[:0]
    if len(val) == 0:
        if len(train) < 2:
            raise DataError(f"need at least 2 training rows, got {len(train)}")
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = min(len(train) - 1, max(1, round(val_fraction * len(train))))
        # Kept in table order (the loader shuffles), so messages name the first bad row.
        val, train = train.iloc[np.sort(order[:n_val])], train.iloc[np.sort(order[n_val:])]
    return train, val, test


def make_loader(dataset: TableDataset, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """Batches come whole from `TableDataset.__getitems__`, so the collate is the identity."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=identity_collate,
        persistent_workers=num_workers > 0,
    )

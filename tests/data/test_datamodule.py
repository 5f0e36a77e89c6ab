from __future__ import annotations

import os

import pandas as pd
import torch

from plait.data.collate import Batch
from plait.data.datamodule import default_workers, make_loader, split_frame


def test_grouped_validation_keeps_each_item_on_one_side():
    # 20 images with 5 captions each, and two rows without an image.
    frame = pd.DataFrame({"image": [f"{i // 5}.png" for i in range(100)] + ["", None], "caption": "x"})
    train, val, test = split_frame(frame, None, 0.2, seed=1, group_column="image")
    assert len(test) == 0 and len(train) + len(val) == 102
    seen = set(train["image"].dropna()) - {""}
    assert not seen & (set(val["image"].dropna()) - {""})  # no image on both sides
    assert 15 <= len(val) <= 25  # whole groups of 5 to about 20 rows
    again = split_frame(frame, None, 0.2, seed=1, group_column="image")
    assert list(again[1].index) == list(val.index)  # seeded


def test_grouped_validation_never_takes_every_group():
    frame = pd.DataFrame({"image": ["a.png"] * 3 + ["b.png"] * 3})
    train, val, _ = split_frame(frame, None, 0.9, seed=0, group_column="image")
    assert len(train) == 3 and len(val) == 3


def test_auto_workers_and_pinned_memory():
    assert default_workers(streaming=False) == 0  # in-memory tables gather in the main process
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert default_workers(streaming=True) == max(0, min(4, cores - 1))

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 4

        def __getitems__(self, rows: list[int]) -> Batch:
            idx = torch.tensor(rows)
            return Batch({"x": idx.float()}, {"x": idx >= 0}, {"y": idx}, idx)

    loader = make_loader(Rows(), batch_size=2, shuffle=False)  # type: ignore[arg-type]
    assert loader.num_workers == 0 and not loader.pin_memory
    batch = Batch({"x": torch.zeros(2)}, {"x": torch.ones(2, dtype=torch.bool)}, {}, torch.arange(2))
    if torch.cuda.is_available():  # pinning needs a CUDA runtime
        pinned = batch.pin_memory()
        assert pinned.inputs["x"].is_pinned() and pinned.rows.is_pinned()

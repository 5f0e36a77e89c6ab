from __future__ import annotations

import pandas as pd

from plait.data.datamodule import split_frame


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

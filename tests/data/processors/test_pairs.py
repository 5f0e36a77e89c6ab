from __future__ import annotations

import pandas as pd
import pytest

from plait.data.processors import PairTarget
from plait.errors import ConfigError


def test_rows_with_the_same_cell_share_an_item_id():
    frame = pd.DataFrame({"image": ["a.png", "a.png", "b.png", ""], "caption": ["x", "y ", "y", "z"]})
    proc = PairTarget(["image", "caption"]).fit(frame, "retrieval")
    ids = proc.transform(proc.select(frame, "retrieval"), "retrieval")
    assert ids.tolist() == [[0, 0], [0, 1], [1, 1], [-1, 2]]  # stripped text matches; empty → -1
    assert proc.source_columns("retrieval") == ["image", "caption"]
    assert proc.head_kwargs() == {"towers": ["image", "caption"]}


def test_one_column_is_not_a_pair():
    with pytest.raises(ConfigError, match="two or more different columns"):
        PairTarget(["image", "image"]).fit(pd.DataFrame({"image": ["a"]}))

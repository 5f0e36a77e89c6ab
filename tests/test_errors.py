"""A user error stays one line, also when it comes back from a DataLoader worker."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Dataset

from plait.errors import DataError, PlaitError


class BadCell(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        if index == 2:
            raise DataError("shard part-1.parquet: column 'image', row 3: not a readable image\nmore")
        return index


def test_message_is_one_line():
    assert str(PlaitError("a\nb")) == "a b"


def test_an_error_from_a_loader_worker_keeps_the_users_line():
    """torch re-raises it as DataError("Caught DataError in DataLoader worker process 0.
    Original Traceback …"); what the user sees is the worker's own message."""
    loader = DataLoader(BadCell(), batch_size=1, num_workers=1)
    with pytest.raises(DataError) as caught:
        list(loader)
    assert str(caught.value) == "shard part-1.parquet: column 'image', row 3: not a readable image more"

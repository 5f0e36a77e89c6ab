"""The on-disk feature cache: keys, round trip across processes, damaged parts."""

from pathlib import Path

import torch

from plait.data import feature_cache
from plait.data.feature_cache import FeatureCache, item_keys


def test_keys_depend_on_content_salt_and_shape():
    a = torch.arange(12, dtype=torch.uint8).reshape(2, 6)
    keys = item_keys(a, "s")
    assert len(keys) == 2 and keys[0] != keys[1] and all(len(k) == 16 for k in keys)
    assert item_keys(a, "s") == keys
    assert item_keys(a, "other preprocessing") != keys
    assert item_keys(a.reshape(2, 2, 3), "s") != keys  # same bytes, another shape
    assert item_keys(a[:0], "s") == []


def test_round_trip_through_disk_and_damaged_parts_are_ignored(tmp_path: Path):
    keys = item_keys(torch.arange(6).reshape(3, 2), "s")
    cache = FeatureCache(tmp_path)
    cache.put(keys[:2], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    (tmp_path / "part-broken.safetensors").write_bytes(b"not a safetensors file")
    feature_cache._OPEN.clear()
    fresh = FeatureCache.open(tmp_path)
    found = fresh.get(keys)
    assert set(found) == {0, 1} and found[1].tolist() == [3.0, 4.0]
    assert FeatureCache.open(tmp_path) is fresh
    assert not list(tmp_path.glob(".*.tmp"))  # parts are renamed into place whole

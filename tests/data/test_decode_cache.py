"""The on-disk decode cache: hits, misses on any change, damage, opt-out, no pickle."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from plait.data import decode_cache
from plait.data.dataset import TableDataset
from plait.data.decode_cache import cached_transform
from plait.data.paths import confined_to
from plait.data.processors import Encoded, ImageProcessor, NumericProcessor, TextProcessor
from plait.errors import DataError
from tests.conftest import make_table


def cached_files() -> list[Path]:
    return sorted(decode_cache.cache_dir().glob("*.safetensors"))


def same(a: Encoded, b: Encoded) -> None:
    assert torch.equal(a.values, b.values) and a.values.dtype == b.values.dtype
    assert torch.equal(a.present, b.present)
    assert (a.index is None) == (b.index is None)
    if a.index is not None:
        assert torch.equal(a.index, b.index)
    assert a.bad_rows == b.bad_rows


@pytest.fixture
def table(tmp_path: Path) -> pd.DataFrame:
    return make_table(tmp_path, rows=12)


def image_processor(frame: pd.DataFrame, folder: Path, size: int = 8) -> ImageProcessor:
    proc = ImageProcessor(size=size)
    proc.base_dir = folder
    return proc.fit(frame["image"])


def refuse_transform(proc: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> Encoded:
        raise AssertionError("transform ran although the column was cached")

    monkeypatch.setattr(proc, "transform", fail)


def test_cache_lives_under_plait_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "c"))
    assert decode_cache.cache_dir() == tmp_path / "c" / "decoded"


def test_second_transform_is_read_back_identical(table, tmp_path, monkeypatch):
    proc = image_processor(table, tmp_path)
    first = cached_transform(proc, table["image"], "image", "error")
    assert len(cached_files()) == 1
    same(first, proc.transform(table["image"], "image"))  # the cache changes nothing
    refuse_transform(proc, monkeypatch)
    again = cached_transform(proc, table["image"], "image", "error")
    same(again, first)
    assert len(cached_files()) == 1


def test_text_columns_are_cached_too(table, monkeypatch):
    proc = TextProcessor().fit(table["caption"])
    first = cached_transform(proc, table["caption"], "caption", "error")
    refuse_transform(proc, monkeypatch)
    same(cached_transform(proc, table["caption"], "caption", "error"), first)


def test_a_changed_file_misses(table, tmp_path):
    proc = image_processor(table, tmp_path)
    cached_transform(proc, table["image"], "image", "error")
    path = tmp_path / table.loc[0, "image"]
    Image.fromarray(np.full((16, 16, 3), 255, dtype=np.uint8)).save(path)
    os.utime(path, ns=(10**18, 10**18))  # a new mtime even on a coarse-clock file system
    changed = cached_transform(proc, table["image"], "image", "error")
    assert len(cached_files()) == 2
    same(changed, proc.transform(table["image"], "image"))
    assert changed.values[changed.index[0]].min() == 255  # the new pixels, not the old ones


def test_the_same_cells_in_another_folder_miss(table, tmp_path):
    proc = image_processor(table, tmp_path)
    cached_transform(proc, table["image"], "image", "error")
    make_table(tmp_path / "other", rows=12, seed=1)
    proc.base_dir = tmp_path / "other"
    cached_transform(proc, table["image"], "image", "error")
    assert len(cached_files()) == 2


def test_another_processor_state_misses(table, tmp_path):
    cached_transform(image_processor(table, tmp_path, size=8), table["image"], "image", "error")
    bigger = cached_transform(image_processor(table, tmp_path, size=12), table["image"], "image", "error")
    assert bigger.values.shape[-1] == 12 and len(cached_files()) == 2
    text = table["caption"]
    cached_transform(TextProcessor().fit(text), text, "caption", "error")
    cached_transform(TextProcessor(max_length=2).fit(text), text, "caption", "error")
    assert len(cached_files()) == 4


def test_other_cells_or_on_bad_row_miss(table, tmp_path):
    proc = image_processor(table, tmp_path)
    cached_transform(proc, table["image"], "image", "error")
    cached_transform(proc, table["image"].iloc[:6], "image", "error")
    cached_transform(proc, table["image"], "image", "missing")
    assert len(cached_files()) == 3


def test_a_damaged_cache_file_is_recomputed(table, tmp_path):
    proc = image_processor(table, tmp_path)
    first = cached_transform(proc, table["image"], "image", "error")
    (path,) = cached_files()
    path.write_bytes(path.read_bytes()[:100])  # torn
    same(cached_transform(proc, table["image"], "image", "error"), first)
    path.write_bytes(b"not a safetensors file")
    same(cached_transform(proc, table["image"], "image", "error"), first)
    # Readable but for another table size: inconsistent, so ignored too.
    other = cached_transform(proc, table["image"].iloc[:6], "image", "error")
    (small,) = [p for p in cached_files() if p != path]
    path.write_bytes(small.read_bytes())
    same(cached_transform(proc, table["image"], "image", "error"), first)
    assert len(other) == 6


def test_disabled_writes_nothing(table, tmp_path):
    proc = image_processor(table, tmp_path)
    encoded = cached_transform(proc, table["image"], "image", "error", enabled=False)
    same(encoded, proc.transform(table["image"], "image"))
    assert not decode_cache.cache_dir().exists()


def test_files_are_plain_safetensors_without_pickle(table, tmp_path):
    proc = image_processor(table, tmp_path)
    table.loc[3, "image"] = "images/missing.png"
    cached_transform(proc, table["image"], "image", "missing")
    (path,) = cached_files()
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])  # a JSON header, then raw tensor bytes
    assert set(header) - {"__metadata__"} == {"values", "present", "index", "bad_rows"}
    assert header["values"]["dtype"] == "U8"
    assert b"\x80\x04" not in data[: 8 + header_len] and b"torch._utils" not in data
    hit = cached_transform(proc, table["image"], "image", "missing")
    assert hit.bad_rows == [3] and not hit.present[3]


def test_a_bad_file_with_on_bad_row_error_raises_and_stores_nothing(table, tmp_path):
    proc = image_processor(table, tmp_path)
    table.loc[3, "image"] = "images/missing.png"
    with pytest.raises(DataError, match="row 4"):
        cached_transform(proc, table["image"], "image", "error")
    assert not cached_files()


def test_the_data_root_is_not_bypassed_by_a_cached_column(table, tmp_path):
    proc = image_processor(table, tmp_path)
    outside = cached_transform(proc, table["image"], "image", "missing")
    assert not outside.bad_rows
    (tmp_path / "root").mkdir()
    with confined_to(tmp_path / "root"):
        refused = cached_transform(proc, table["image"], "image", "missing")
    assert refused.bad_rows == [i for i, v in enumerate(table["image"]) if v]  # every image
    assert len(cached_files()) == 2
    with confined_to(tmp_path):  # every file inside: the same content as unconfined
        same(cached_transform(proc, table["image"], "image", "missing"), outside)


def test_cheap_kinds_and_perturbed_transforms_are_not_cached(table, tmp_path):
    numeric = NumericProcessor().fit(table["size"])
    cached_transform(numeric, table["size"], "size", "error")
    proc = image_processor(table, tmp_path)
    proc.perturb = lambda pixels: 255 - pixels  # robustness evaluation
    cached_transform(proc, table["image"], "image", "error")
    assert not decode_cache.cache_dir().exists()


def test_dataset_from_frame_uses_the_cache_when_asked(table, tmp_path, monkeypatch):
    procs = {"image": image_processor(table, tmp_path), "caption": TextProcessor().fit(table["caption"])}
    plain = TableDataset.from_frame(table, procs, base_dir=tmp_path)
    assert not decode_cache.cache_dir().exists()  # off by default at this level
    TableDataset.from_frame(table, procs, base_dir=tmp_path, cache=True)
    assert len(cached_files()) == 2
    for proc in procs.values():
        refuse_transform(proc, monkeypatch)
    cached = TableDataset.from_frame(table, procs, base_dir=tmp_path, cache=True)
    for name in procs:
        same(cached.columns[name], plain.columns[name])


def test_clear_removes_the_folder(table, tmp_path):
    proc = image_processor(table, tmp_path)
    cached_transform(proc, table["image"], "image", "error")
    files, size = decode_cache.usage()
    assert files == 1 and size > 0
    assert decode_cache.clear() == (1, size)
    assert not decode_cache.cache_dir().exists() and decode_cache.usage() == (0, 0)

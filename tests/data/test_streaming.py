"""Streaming a folder of Parquet shards: every row once per epoch, reproducible splits,
equal batch counts for DDP ranks, and training end to end (local folder, fsspec URL)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
import torch

from plait.config import parse_config
from plait.data.datamodule import make_loader, return_freed_buffers
from plait.data.prepare import stream_datasets
from plait.data.schema import resolve_config
from plait.data.streaming import StreamingDataset, label_pass, open_shards, stream_loader
from plait.errors import DataError
from plait.train import fit
from tests.conftest import TINY_CONFIG, TINY_ENCODERS, make_table


def write_shards(folder: Path, frame: pd.DataFrame, shards: int = 3, row_group: int = 16) -> Path:
    """`frame` cut into `shards` Parquet files of small row groups under folder/shards."""
    out = folder / "shards"
    out.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), shards)):
        frame.iloc[part].to_parquet(out / f"part-{i:03d}.parquet", row_group_size=row_group, index=False)
    return out


def tabular_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame({"row_id": np.arange(rows), "x": x, "y": np.where(x > 0, "pos", "neg")})


def datasets(folder: Path, config: dict | None = None, workers: int = 0) -> dict[str, StreamingDataset]:
    shards = open_shards(folder)
    sample, taken = shards.sample(1000, 0)
    # A tenth held out (not the recipe's size for small tables): the tests count on it.
    raw = {"trainer": {"num_workers": workers, "batch_size": 8, "val_fraction": 0.1}, **(config or {})}
    cfg = resolve_config(sample, parse_config(raw), ["y"], {"row_id": "ignore"})
    _, _, parts = stream_datasets(cfg, shards, sample, taken)
    return parts


def served(dataset: StreamingDataset) -> list[int]:
    """Table positions (shard row numbers offset by shard) of every row served, in order."""
    return [int(r) for batch in dataset for r in batch.rows]


def test_open_shards_lists_row_groups(tmp_path: Path):
    folder = write_shards(tmp_path, tabular_frame(100), shards=2, row_group=16)
    shards = open_shards(folder)
    assert len(shards.paths) == 2 and shards.rows == 100
    assert [u.rows for u in shards.units if u.shard == 0] == [16, 16, 16, 2]
    assert shards.units[1].start == 16


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere", "not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no Parquet files"),
    ],
)
def test_open_shards_errors(tmp_path: Path, make, message: str):
    with pytest.raises(DataError, match=message):
        open_shards(make(tmp_path))


def test_each_training_row_once_per_epoch_in_a_new_order(tmp_path: Path):
    frame = tabular_frame(300)
    parts = datasets(write_shards(tmp_path, frame))
    train, val = parts["train"], parts["val"]
    assert all(len(batch.targets["y"]) == 8 for batch in train)  # batches carry their targets
    first, second = served(train), served(train)  # whole-table row positions
    assert len(first) == len(set(first))  # no row twice in one epoch
    # Only full batches when training: the partial last batch (a different one each epoch,
    # as the order changes) is dropped.
    assert len(first) == len(second) == (train.n_rows // 8) * 8
    assert first != second and len(set(first) & set(second)) >= len(first) - 8
    val_rows = served(val)
    assert len(val_rows) == val.n_rows and not set(val_rows) & (set(first) | set(second))
    assert sorted(set(first) | set(second) | set(val_rows)) == list(range(300))
    assert val_rows == served(val)  # evaluation keeps every row, in a stable order


def test_validation_carve_is_reproducible_and_sized(tmp_path: Path):
    folder = write_shards(tmp_path, tabular_frame(600))
    a, b = datasets(folder), datasets(folder)
    assert a["val"].n_rows == b["val"].n_rows
    assert 0.05 < a["val"].n_rows / 600 < 0.17
    assert torch.equal(a["val"].target_values("y"), b["val"].target_values("y"))


def test_split_column_decides(tmp_path: Path):
    frame = tabular_frame(200).assign(split=["train"] * 150 + ["val"] * 30 + ["test"] * 20)
    parts = datasets(write_shards(tmp_path, frame))
    assert {k: v.n_rows for k, v in parts.items()} == {"train": 150, "val": 30, "test": 20}


def test_ddp_ranks_get_equal_batch_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Uneven shards: 7 row groups of varying size for 2 ranks × 2 workers.
    frame = tabular_frame(250)
    train = datasets(write_shards(tmp_path, frame, shards=3, row_group=13), workers=2)["train"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    lengths = []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        lengths.append(len(train))
    assert lengths[0] == lengths[1] > 0
    units, caps = train._plan(epoch=3)
    covered = sorted(u for mine in units for u in mine)
    assert covered == sorted(u for u in range(len(train.counts)) if train.counts[u])  # each unit once
    assert sum(caps[:2]) == sum(caps[2:])


def test_every_class_comes_from_the_full_table_not_the_sample(tmp_path: Path):
    frame = tabular_frame(400)
    frame.loc[399, "y"] = "rare"  # only in the last shard's last row group
    folder = write_shards(tmp_path, frame, shards=4, row_group=100)
    shards = open_shards(folder)
    sample, taken = shards.sample(100, seed=0)  # one row group's first rows, at most
    cfg = resolve_config(sample, parse_config({}), ["y"], {"row_id": "ignore"})
    _, targets, _ = stream_datasets(cfg, shards, sample, taken)
    assert "rare" in list(targets["y"].classes_)


def test_missing_label_names_shard_and_row(tmp_path: Path):
    frame = tabular_frame(60)
    frame.loc[45, "y"] = None  # in shard 2 (rows 41-60, counting from 1)
    shards = open_shards(write_shards(tmp_path, frame))
    with pytest.raises(DataError, match=r"'y' is empty in row\(s\) 46 \(shard part-002.parquet\)"):
        label_pass(shards, ["y"], None, 0.1, 0, ["y"])


def test_bad_image_in_a_shard_is_named(tmp_path: Path):
    frame = make_table(tmp_path, rows=48)
    (tmp_path / "images" / "40.png").write_bytes(b"not an image")
    folder = write_shards(tmp_path, frame)
    trainer = {**TINY_CONFIG["trainer"], "num_workers": 0, "stream_sample_rows": 100}
    cfg = {"trainer": trainer, "inputs": [{"name": "image", "encoder": TINY_ENCODERS["image"]}]}
    # Found while fitting on the sample or while streaming: the row counts across shards.
    with pytest.raises(DataError, match=r"column 'image', row 41: not a readable image"):
        fit(folder, "colour", cfg, out=tmp_path / "run", base_dir=tmp_path, verbose=False)


@pytest.mark.slow
def test_fit_streams_images_and_text_from_shards(tmp_path: Path):
    frame = make_table(tmp_path, rows=96)
    folder = write_shards(tmp_path, frame, shards=3, row_group=8)
    config = {
        **TINY_CONFIG,
        "trainer": {**TINY_CONFIG["trainer"], "epochs": 4, "num_workers": 1, "stream_buffer_rows": 32},
        "inputs": [
            {"name": "image", "encoder": TINY_ENCODERS["image"]},
            {"name": "caption", "encoder": TINY_ENCODERS["text"]},
        ],
    }
    predictor = fit(folder, "colour", config, out=tmp_path / "run", base_dir=tmp_path, verbose=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] >= 0.6  # learnt (chance is 1/3)
    assert metrics["rows"]["train"] + metrics["rows"]["val"] == 96
    info = json.loads((tmp_path / "run" / "plait.json").read_text())
    assert info["data"]["shards"] == 3  # the shards' content hash is recorded
    # The run predicts an ordinary table like any other.
    preds = predictor.predict(frame.head(6), base_dir=tmp_path)
    assert len(preds) == 6


def test_fsspec_url(tmp_path: Path):
    frame = tabular_frame(120)
    fs = fsspec.filesystem("memory")
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 2)):
        with fs.open(f"/plait-test/part-{i}.parquet", "wb") as f:
            frame.iloc[part].to_parquet(f, row_group_size=20, index=False)
    config = {"trainer": {"epochs": 2, "batch_size": 16, "num_workers": 0, "progress": False}}
    fit("memory://plait-test", "y", config, out=tmp_path / "run", types={"row_id": "ignore"}, verbose=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["rows"]["train"] + metrics["rows"]["val"] == 120


@pytest.mark.slow
def test_cli_trains_on_a_shard_folder(tmp_path: Path):
    folder = write_shards(tmp_path, tabular_frame(200).assign(split=["train"] * 160 + ["test"] * 40))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "plait.cli",
            "train",
            str(folder),
            "--label",
            "y",
            "--out",
            str(tmp_path / "r"),
            "--epochs",
            "2",
            "--type",
            "row_id=ignore",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["rows"]["test"] == 40 and "accuracy" in metrics["test"]
    assert (tmp_path / "r" / "report.html").is_file()


def test_text_generation_is_refused_when_streaming(tmp_path: Path):
    frame = tabular_frame(60).assign(
        caption=[f"a long free text sentence number {i} here" for i in range(60)]
    )
    folder = write_shards(tmp_path, frame)
    with pytest.raises(Exception, match="fits in memory"):
        fit(
            folder,
            "caption",
            {"trainer": {"epochs": 1}},
            out=tmp_path / "r",
            types={"caption": "text"},
            verbose=False,
        )


def test_decoded_row_groups_are_cached_after_the_first_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from plait.data.decode_cache import cache_dir
    from plait.data.processors.image import ImageProcessor

    frame = make_table(tmp_path, rows=48)
    shards = open_shards(write_shards(tmp_path, frame), base_dir=tmp_path)
    sample, taken = shards.sample(1000, 0)
    raw = {"preset": "fast", "trainer": {"num_workers": 0, "batch_size": 8}, "inputs": [{"name": "image"}]}
    cfg = resolve_config(sample, parse_config(raw), ["colour"], None)
    train = stream_datasets(cfg, shards, sample, taken)[2]["train"]
    first = served(train)
    stored = sorted(cache_dir().glob("*.safetensors"))
    assert stored  # one entry per decoded row group and column
    monkeypatch.setattr(ImageProcessor, "transform", lambda *a, **k: pytest.fail("decoded again"))
    assert sorted(served(train)) != [] and sorted(cache_dir().glob("*.safetensors")) == stored
    assert len(first) == (train.n_rows // 8) * 8


@pytest.mark.slow
def test_data_root_holds_in_the_loader_workers(tmp_path: Path):
    from plait.data.paths import confined_to

    inside = tmp_path / "inside"
    frame = make_table(inside, rows=300)
    # Row 41 escapes the root. The sample (the first 6 rows of each row group of 16)
    # misses it, so only a loader worker, decoding its row group, can refuse it.
    frame.loc[40, "image"] = "../outside.png"
    (tmp_path / "outside.png").write_bytes((inside / "images" / "0.png").read_bytes())
    folder = write_shards(inside, frame, shards=1, row_group=16)
    config = {
        "trainer": {**TINY_CONFIG["trainer"], "epochs": 1, "num_workers": 1, "stream_sample_rows": 100},
        "inputs": [{"name": "image", "encoder": TINY_ENCODERS["image"]}],
    }
    with confined_to(inside), pytest.raises(DataError, match=r"row 41: .*outside --data-root"):
        fit(folder, "colour", config, out=tmp_path / "run", base_dir=inside, verbose=False)


def test_loader_workers_return_freed_buffers(tmp_path: Path):
    """Each worker fixes glibc's mmap threshold, so batch-sized buffers it frees go back to
    the system instead of growing its heap batch after batch (docs/benchmarks.md, issue 10)."""
    folder = write_shards(tmp_path, tabular_frame())
    assert stream_loader(datasets(folder, workers=1)["val"]).worker_init_fn is return_freed_buffers
    assert stream_loader(datasets(folder, workers=0)["val"]).worker_init_fn is None  # no worker
    in_memory = torch.utils.data.TensorDataset(torch.zeros(4))  # tables in memory, with workers, too
    loader = make_loader(in_memory, 2, False, num_workers=1)  # type: ignore[arg-type]
    assert loader.worker_init_fn is return_freed_buffers
    assert return_freed_buffers() == (platform.libc_ver()[0] == "glibc")

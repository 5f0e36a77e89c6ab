from pathlib import Path

import torch

from plait.data.collate import Batch
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.processors import CategoryTarget, ImageProcessor, NumericProcessor, TextProcessor
from tests.conftest import make_table


def dataset(folder: Path, training: bool = False, **image_params) -> TableDataset:
    frame = make_table(folder, rows=20)
    procs = {
        "image": ImageProcessor(size=8, **image_params),
        "caption": TextProcessor(),
        "size": NumericProcessor(),
    }
    procs["image"].base_dir = folder
    for name, proc in procs.items():
        proc.fit(frame[name], name)
    targets = {"colour": CategoryTarget().fit(frame["colour"])}
    return TableDataset.from_frame(frame, procs, targets, training=training, base_dir=folder)


def test_getitems_returns_a_whole_batch(tmp_path: Path):
    ds = dataset(tmp_path)
    batch = ds.__getitems__([0, 5, 7])
    assert isinstance(batch, Batch) and len(batch) == 3
    assert batch.inputs["image"].shape == (3, 3, 8, 8) and batch.inputs["image"].dtype == torch.float32
    assert batch.inputs["caption"].dtype == torch.int64
    assert batch.inputs["size"].shape == (3, 2)
    assert batch.present["image"].tolist() == [True, False, True]  # row 5 has no image
    assert batch.present["caption"].tolist() == [True, True, False]  # row 7 has no caption
    assert batch.targets["colour"].tolist() == [2, 0, 1]  # red, blue, green; classes sorted
    assert batch.rows.tolist() == [0, 5, 7]


def test_loader_covers_every_row_once_in_order(tmp_path: Path):
    ds = dataset(tmp_path)
    rows = torch.cat([b.rows for b in make_loader(ds, batch_size=6, shuffle=False)])
    assert rows.tolist() == list(range(20))
    shuffled = torch.cat([b.rows for b in make_loader(ds, batch_size=6, shuffle=True)])
    assert sorted(shuffled.tolist()) == list(range(20))


def test_augmentation_only_for_the_training_dataset(tmp_path: Path):
    evaluation = dataset(tmp_path, horizontal_flip=True, rotation=30)
    training = dataset(tmp_path, training=True, horizontal_flip=True, rotation=30)
    assert torch.equal(evaluation[0].inputs["image"], evaluation[0].inputs["image"])
    torch.manual_seed(0)
    samples = [training.__getitems__(list(range(20))).inputs["image"] for _ in range(2)]
    assert not torch.equal(samples[0], samples[1])


def test_prediction_dataset_without_targets(tmp_path: Path):
    ds = dataset(tmp_path)
    frame = make_table(tmp_path, rows=20)
    bare = TableDataset.from_frame(frame, ds.processors, None, base_dir=tmp_path)
    assert bare[0].targets == {}
    assert bare.bad_rows == [] and bare.skipped == 0


def test_bad_cells_are_skipped_or_treated_as_missing(tmp_path: Path):
    ds = dataset(tmp_path)
    frame = make_table(tmp_path, rows=20).astype({"size": object})
    frame.loc[3, "image"] = "images/nope.png"
    frame.loc[4, "size"] = "1,200"
    skipped = TableDataset.from_frame(frame, ds.processors, None, base_dir=tmp_path, on_bad_row="skip")
    assert len(skipped) == 18 and skipped.bad_rows == [3, 4] and skipped.skipped == 2
    rows = skipped.__getitems__(list(range(18))).rows.tolist()
    assert 3 not in rows and 4 not in rows and rows[3] == 5
    kept = TableDataset.from_frame(frame, ds.processors, None, base_dir=tmp_path, on_bad_row="missing")
    batch = kept.__getitems__([3, 4])
    assert len(kept) == 20 and kept.skipped == 0
    assert batch.present["image"].tolist() == [False, True]
    assert batch.inputs["size"][1].tolist() == [0.0, 1.0]  # the bad number is a missing number

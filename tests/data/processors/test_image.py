import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from plait.data.processors import ImageProcessor
from plait.errors import DataError
from tests.conftest import make_table


def fitted(folder: Path, **params) -> tuple[ImageProcessor, pd.Series]:
    frame = make_table(folder, rows=12, missing=False)
    proc = ImageProcessor(size=8, **params)
    proc.base_dir = folder
    return proc.fit(frame["image"], "image"), frame["image"]


def test_fit_transform_shapes_and_sharing(tmp_path: Path):
    proc, paths = fitted(tmp_path)
    paths = pd.concat([paths, paths.iloc[:3]], ignore_index=True)  # rows naming the same file
    enc = proc.transform(paths, "image")
    assert enc.values.dtype == torch.uint8
    assert enc.values.shape == (13, 3, 8, 8)  # 12 files + the placeholder, no copies
    assert enc.present.tolist() == [True] * 15
    values, present = enc.take(torch.tensor([0, 12]))
    assert torch.equal(values[0], values[1]) and present.all()
    assert len(proc.mean_) == 3 and all(s > 0 for s in proc.std_)


def test_empty_cell_is_missing_not_an_error(tmp_path: Path):
    proc, paths = fitted(tmp_path)
    paths = paths.copy()
    paths.iloc[2] = ""
    paths.iloc[3] = None
    enc = proc.transform(paths, "image")
    assert enc.present.tolist()[:4] == [True, True, False, False]
    assert enc.take(torch.tensor([2]))[0].sum() == 0


def test_to_model_normalises_and_augments_only_in_training(tmp_path: Path):
    proc, paths = fitted(tmp_path, horizontal_flip=True, rotation=10, random_crop=True)
    raw = proc.transform(paths, "image").values[1:5]
    out = proc.to_model(raw, training=False)
    assert out.dtype == torch.float32 and out.shape == (4, 3, 8, 8)
    assert torch.equal(out, proc.to_model(raw, training=False))
    torch.manual_seed(0)
    assert not torch.equal(out, proc.to_model(raw, training=True))


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_bad_files_name_column_row_and_path(tmp_path: Path, problem: str):
    proc, paths = fitted(tmp_path)
    paths = paths.copy()
    if problem == "missing":
        paths.iloc[4] = "images/nope.png"
        match = r"column 'image', row 5: image file not found: .*nope.png"
    else:
        (tmp_path / "images" / "bad.png").write_bytes(b"this is not a png")
        paths.iloc[4] = "images/bad.png"
        match = r"column 'image', row 5: not a readable image .*bad.png"
    with pytest.raises(DataError, match=match):
        proc.transform(paths, "image")
    enc = proc.transform(paths, "image", on_bad_row="missing")
    assert not enc.present[4] and enc.bad_rows == [4]


def test_odd_modes_become_rgb(tmp_path: Path):
    Image.fromarray(np.zeros((5, 9), dtype=np.uint8)).save(tmp_path / "grey.png")
    Image.new("RGBA", (3, 3)).save(tmp_path / "alpha.png")
    Image.new("P", (4, 4)).save(tmp_path / "palette.png")
    proc = ImageProcessor(size=8)
    proc.base_dir = tmp_path
    paths = pd.Series(["grey.png", "alpha.png", str(tmp_path / "palette.png")])  # absolute too
    enc = proc.fit(paths).transform(paths, "image")
    assert enc.values.shape == (4, 3, 8, 8)


def test_state_is_json_and_round_trips(tmp_path: Path):
    proc, paths = fitted(tmp_path, grayscale=True)
    state = json.loads(json.dumps(proc.state()))
    loaded = ImageProcessor.from_state(state)
    loaded.base_dir = tmp_path
    a, b = proc.transform(paths, "image"), loaded.transform(paths, "image")
    assert torch.equal(a.values, b.values)
    assert torch.equal(proc.to_model(a.values, False), loaded.to_model(b.values, False))
    assert loaded.encoder_kwargs() == {"in_channels": 1}

"""Box targets: cells → fractions of the image and back to pixels, the one-line errors,
and boxes moved with the pixels by augmentation, against boxes computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from plait.data.processors import BoxesTarget, BoxTarget, ImageProcessor
from plait.data.processors.image import move_boxes
from plait.data.table import infer_target_type
from plait.errors import DataError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two images: 40 wide × 20 high, and 10 × 10."""
    Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    return tmp_path


def frame(
    cells: list, images: tuple[str, ...] = ("wide.png", "small.png"), name: str = "boxes"
) -> pd.DataFrame:
    return pd.DataFrame({name: cells, "image": list(images)})


def boxes_target(folder: Path, cells: list) -> BoxesTarget:
    proc = BoxesTarget(image="image")
    proc.base_dir = folder
    return proc.fit(frame(cells), "boxes")


def test_boxes_become_fractions_of_their_image_and_come_back_in_pixels(folder: Path):
    cells = [json.dumps([[4, 2, 20, 10, "cat"], [0, 0, 40, 20, 7]]), "[]"]  # a CSV's JSON; [] = no object
    proc = boxes_target(folder, cells)
    assert proc.classes_ == ["7", "cat"]  # numbers first, as class labels sort
    out = proc.transform(frame(cells), "boxes")  # (N, M, 5)
    expected = torch.tensor(
        [[[0.1, 0.1, 0.5, 0.5, 1], [0, 0, 1, 1, 0]], [[0, 0, 0, 0, -1], [0, 0, 0, 0, -1]]]
    )
    assert torch.allclose(out, expected)
    preds = torch.tensor([[[0.1, 0.1, 0.5, 0.5, 1, 0.9]], [[0, 0, 0, 0, -1, 0]]])  # (N, K, 6)
    decoded = [json.loads(c) for c in proc.decode(preds, frame(cells)["image"])]
    assert decoded == [[[4.0, 2.0, 20.0, 10.0, "cat", 0.9]], []]


def test_list_cells_of_parquet_are_read_as_json_cells(folder: Path):
    cells = [np.array([np.array([4.0, 2, 20, 10, 7.0])], dtype=object), np.array([], dtype=object)]
    proc = boxes_target(folder, cells)
    assert proc.classes_ == ["7"]  # 7.0 in a list of floats is the label 7
    assert proc.transform(frame(cells), "boxes")[0, 0, 4] == 0


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ([[10, 2, 4, 8, "cat"]], r"row 1, object 1: box \[10, 2, 4, 8\] is inverted or empty"),
        ([[30, 2, 41, 8, "cat"]], r"row 1, object 1: box \[30, 2, 41, 8\] lies outside the 40×20 image"),
        ([[0, 0, 4, 4, "dog"]], r"row 1, object 1: unknown label 'dog'; known: 'cat'"),
        (
            [[0, 0, 4, "cat"]],
            r"row 1, object 1: expected \[x0, y0, x1, y1, label\], got \[0, 0, 4, \"cat\"\]",
        ),
    ],
)
def test_bad_boxes_are_one_line_errors_naming_column_row_and_value(folder: Path, cell: list, message: str):
    proc = boxes_target(folder, [json.dumps([[0, 0, 4, 4, "cat"]]), "[]"])
    with pytest.raises(DataError, match=rf"^label column 'boxes', {message}") as err:
        proc.transform(frame([json.dumps(cell), "[]"]), "boxes")
    assert "\n" not in str(err.value)


def test_an_empty_cell_is_a_missing_label_but_an_empty_list_is_not(folder: Path):
    with pytest.raises(DataError, match=r"label column 'boxes' is empty in 1 of 2 rows \(rows 2\)"):
        boxes_target(folder, [json.dumps([[0, 0, 4, 4, "cat"]]), None])
    proc = boxes_target(folder, [json.dumps([[0, 0, 4, 4, "cat"]]), "[]"])
    assert (proc.transform(frame([" []", "[]"]), "boxes")[:, :, 4] == -1).all()


def test_a_single_box_target(folder: Path):
    proc = BoxTarget(image="image")
    proc.base_dir = folder
    cells = ["[4, 2, 20, 10]", "[0, 0, 5, 10]"]
    out = proc.fit(frame(cells, name="box"), "box").transform(frame(cells, name="box"), "box")
    assert torch.allclose(out, torch.tensor([[0.1, 0.1, 0.5, 0.5], [0, 0, 0.5, 1]]))
    assert json.loads(
        proc.decode(
            torch.tensor([[0.1, 0.1, 0.5, 0.5, 0.8]]), frame(cells[:1], ("wide.png",), "box")["image"]
        )[0]
    ) == [4, 2, 20, 10]
    with pytest.raises(
        DataError, match=r"^label column 'box', row 2: box \[0, 0, 11, 10\] lies outside the 10×10"
    ):
        proc.transform(frame(["[4, 2, 20, 10]", "[0, 0, 11, 10]"], name="box"), "box")


def test_only_lists_of_labelled_boxes_are_inferred_as_boxes():
    assert infer_target_type(pd.Series(['[[1, 2, 3, 4, "a"]]', "[]"])) == "boxes"
    assert infer_target_type(pd.Series([[[1, 2, 3, 4, 5]], []])) == "boxes"
    assert infer_target_type(pd.Series([["a", "b"], ["c"]])) == "multilabel"
    assert infer_target_type(pd.Series(["[1, 2, 3, 4]", "[2, 3, 4, 5]"])) != "boxes"  # one box: declared


# -- augmentation: boxes (fractions) move with the pixels ---------------------------------
IMAGE = torch.zeros(1, 20, 40, dtype=torch.uint8)  # (C, H, W): 40 wide, 20 high
BOXES = torch.tensor([[0.1, 0.1, 0.5, 0.5, 3], [0, 0, 0, 0, -1]])  # pixels [4, 2, 20, 10]


def pixels(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    return boxes[..., :4] * torch.tensor([width, height, width, height])


def test_a_horizontal_flip_mirrors_the_box():
    image, boxes = move_boxes(v2.RandomHorizontalFlip(p=1.0), IMAGE, BOXES)
    assert torch.allclose(pixels(boxes[0], 40, 20), torch.tensor([40 - 20, 2, 40 - 4, 10.0]))
    assert boxes[0, 4] == 3 and boxes[1, 4] == -1  # the class stays, padding stays padding


def test_a_resize_scales_the_box_and_its_fractions_stay():
    image, boxes = move_boxes(v2.Resize((10, 20)), IMAGE, BOXES)
    assert image.shape[-2:] == (10, 20)
    assert torch.allclose(boxes[0], BOXES[0])


def test_a_crop_shifts_the_box_and_drops_a_box_cut_away():
    two = torch.tensor([[0.1, 0.1, 0.5, 0.5, 3], [0.8, 0.1, 0.95, 0.4, 1]])  # the second at x 32-38
    image, boxes = move_boxes(v2.CenterCrop((20, 20)), IMAGE, two)  # keeps x 10-30
    assert image.shape[-2:] == (20, 20)
    assert torch.allclose(pixels(boxes[0], 20, 20), torch.tensor([0, 2, 10, 10.0]))  # 4-20 → clamped 0-10
    assert boxes[0, 4] == 3 and boxes[1, 4] == -1  # the second box lay outside the crop: dropped


def test_a_quarter_turn_turns_the_box():
    square = torch.zeros(1, 20, 20, dtype=torch.uint8)
    box = torch.tensor([[0.1, 0.2, 0.3, 0.6, 0]])  # pixels [2, 4, 6, 12]
    _, boxes = move_boxes(v2.RandomRotation((90, 90)), square, box)
    # 90° anticlockwise about the centre: (x, y) → (y, W - x), so x 2-6, y 4-12 → x 4-12, y 14-18.
    assert torch.allclose(pixels(boxes[0], 20, 20), torch.tensor([4, 14, 12, 18.0]), atol=1e-4)


def test_the_image_processor_moves_boxes_only_when_training():
    proc = ImageProcessor(size=8, horizontal_flip=True)
    proc.mean_, proc.std_ = [0.5] * 3, [0.25] * 3
    images = torch.zeros(16, 3, 8, 8, dtype=torch.uint8)
    boxes = BOXES[None].repeat(16, 1, 1)
    _, same = proc.to_model_with_boxes(images, boxes, training=False)
    assert torch.equal(same, boxes)
    torch.manual_seed(0)
    _, moved = proc.to_model_with_boxes(images, boxes, training=True)
    flipped = (moved[:, 0, 0] - 0.5).abs() < 1e-6  # x0 0.1 → 1 - 0.5
    assert 0 < int(flipped.sum()) < 16  # about half the rows were flipped
    assert torch.allclose(moved[~flipped], boxes[~flipped])

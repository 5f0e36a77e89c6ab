"""--data-root: media paths of a table cannot point outside the root."""

from pathlib import Path

import pandas as pd
import pytest

from plait.data.paths import confined_to
from plait.data.processors.image import ImageProcessor
from plait.errors import DataError
from tests.conftest import make_table


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """root/t.csv with images under root/images, and an image outside the root."""
    root = tmp_path / "root"
    make_table(root, rows=3, missing=False)
    outside = tmp_path / "secret.png"
    (root / "images" / "0.png").rename(outside)
    (root / "images" / "link.png").symlink_to(outside)
    return root, outside


def _processor(root: Path) -> ImageProcessor:
    proc = ImageProcessor(size=8, mean=[0.5] * 3, std=[0.25] * 3).fit(pd.Series([]))
    proc.base_dir = root
    return proc


def cells(outside: Path) -> dict[str, str]:
    return {"dotdot": "../secret.png", "absolute": str(outside), "symlink": "images/link.png"}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_paths_out_of_the_root_are_refused(layout, kind: str):
    root, outside = layout
    proc = _processor(root)
    values = pd.Series(["images/1.png", cells(outside)[kind]])
    assert proc.transform(values, "image").present.tolist() == [True, True]  # not confined
    with confined_to(root):
        with pytest.raises(DataError, match=r"column 'image', row 2: .* is outside --data-root"):
            proc.transform(values, "image")
        for mode in ("missing", "skip"):
            encoded = proc.transform(values, "image", on_bad_row=mode)
            assert encoded.present.tolist() == [True, False] and encoded.bad_rows == [1]


def test_paths_inside_the_root_are_fine(layout):
    root, _ = layout
    proc = _processor(root)
    with confined_to(root):
        encoded = proc.transform(pd.Series(["images/1.png", str(root / "images/2.png")]), "image")
    assert encoded.present.tolist() == [True, True]


def test_environment_variable_and_bad_root(layout, monkeypatch):
    root, outside = layout
    proc = _processor(root)
    monkeypatch.setenv("PLAIT_DATA_ROOT", str(root))
    with pytest.raises(DataError, match="outside --data-root"):
        proc.transform(pd.Series([str(outside)]), "image")
    with pytest.raises(DataError, match="is not a folder"), confined_to(root / "nope"):
        pass

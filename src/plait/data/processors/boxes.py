"""Box targets: objects to detect (`boxes`) and the one region a phrase names (`box`).

A `boxes` cell is a list of objects `[x0, y0, x1, y1, label]` in pixels of the
original image (a JSON list in a CSV, a list column in Parquet or JSONL); `[]` is an
image without objects, not a missing label. A `box` cell is one `[x0, y0, x1, y1]`.
Coordinates are checked against the image of the same row (its size is read from the
file's header, after EXIF rotation, as the image processor sees it) and stored as
fractions of its width and height, so they follow the image through resizing; the
model's predictions are turned back into pixels of each row's own image.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor

from plait.data.paths import media_path
from plait.data.processors.base import is_empty
from plait.data.processors.targets import TargetProcessor, check_no_missing, natural_key
from plait.errors import ConfigError, DataError

_ORIENTATION = 0x0112  # EXIF tag; values 5-8 turn the picture by 90°, swapping width and height


@cache
def _header_size(path: str, mtime: float) -> tuple[int, int]:
    with Image.open(path) as img:  # the header only
        width, height = img.size
        turned = img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    """Parquet list cells arrive as numpy arrays (of arrays): → Python lists."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class _BoxTarget(TargetProcessor):
    """What both box targets share: the image column, cell parsing, the size check."""

    # Where the image column's relative paths resolve: set for each table read, like an
    # input processor's (never saved).
    base_dir: Path = Path(".")

    def __init__(self, image: str | None = None) -> None:
        self.image = image  # the image column the boxes are drawn on (set by plait.data.schema)

    def image_input(self) -> str | None:
        return self.image

    def select(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        return frame[[name, self._image_column(name)]]

    def source_columns(self, name: str) -> list[str]:
        return [name, self._image_column(name)]

    def _image_column(self, name: str) -> str:
        if not self.image:
            raise ConfigError(
                f"box target {name!r} needs the image column it refers to (preprocessing: image)"
            )
        return self.image

    def sizes(self, images: pd.Series, column: str) -> list[tuple[int, int] | None]:
        """(width, height) of each row's image, None where the cell is empty."""
        out: list[tuple[int, int] | None] = []
        for row, value in images.items():
            if is_empty(value):
                out.append(None)
                continue
            path = media_path(value, self.base_dir, self._image_column(column), int(row), "error")
            try:
                out.append(_header_size(str(path), Path(path).stat().st_mtime))
            except FileNotFoundError:
                raise DataError(
                    f"column {self.image!r}, row {int(row) + 1}: image file not found: {path}"
                ) from None
            except Exception as err:  # untrusted bytes: any decoder failure is a bad file
                raise DataError(
                    f"column {self.image!r}, row {int(row) + 1}: not a readable image "
                    f"({type(err).__name__}): {path}"
                ) from None
        return out

    @staticmethod
    def parse(value: Any, column: str, row: int) -> list:
        """A cell → a Python list (JSON text in a CSV, a list in Parquet or JSONL)."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise DataError(
                    f"label column {column!r}, row {row + 1}: {_short(value)} is not a JSON list"
                ) from None
        value = _plain(value)
        if not isinstance(value, list):
            raise DataError(f"label column {column!r}, row {row + 1}: expected a list, got {_short(value)}")
        return value

    @staticmethod
    def check_box(
        coords: list, size: tuple[int, int] | None, column: str, row: int, where: str = ""
    ) -> list[float]:
        """Four finite numbers x0 < x1, y0 < y1 inside the image; else a one-line DataError."""
        shown = _short(coords)
        numbers = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords)
        if len(coords) != 4 or not numbers or not all(math.isfinite(c) for c in coords):
            raise DataError(
                f"label column {column!r}, row {row + 1}{where}: expected 4 finite numbers, got {shown}"
            )
        x0, y0, x1, y1 = (float(c) for c in coords)
        if x1 <= x0 or y1 <= y0:
            raise DataError(
                f"label column {column!r}, row {row + 1}{where}: box {shown} is inverted or empty; "
                "write [x0, y0, x1, y1] with x0 < x1 and y0 < y1"
            )
        if size is None:
            raise DataError(f"label column {column!r}, row {row + 1}: has a box but the image cell is empty")
        width, height = size
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise DataError(
                f"label column {column!r}, row {row + 1}{where}: box {shown} lies outside the "
                f"{width}×{height} image"
            )
        return [x0 / width, y0 / height, x1 / width, y1 / height]


class BoxesTarget(_BoxTarget):
    """Lists of labelled boxes → (N, M, 5) float32: x0, y0, x1, y1 as fractions of the
    image, then the class id; rows with fewer than M objects are padded with class -1."""

    kind = "boxes"

    def fit(self, values: pd.DataFrame, column: str = "boxes") -> BoxesTarget:  # type: ignore[override]
        check_no_missing(values[column], column)
        labels = {
            _label_key(obj[4])
            for row, cell in values[column].items()
            for obj in self._objects(cell, column, row)
        }
        if not labels:
            raise DataError(f"label column {column!r} holds no box in any row; nothing to learn")
        self.classes_ = sorted(labels, key=natural_key)
        return self

    def _objects(self, cell: Any, column: str, row: Any) -> list[list]:
        objects = self.parse(cell, column, int(row))
        for i, obj in enumerate(objects):
            if not isinstance(obj, list) or len(obj) != 5:
                raise DataError(
                    f"label column {column!r}, row {int(row) + 1}, object {i + 1}: expected "
                    f"[x0, y0, x1, y1, label], got {_short(obj)}"
                )
        return objects

    def transform(self, values: pd.DataFrame, column: str = "boxes") -> Tensor:  # type: ignore[override]
        self.check_fitted()
        check_no_missing(values[column], column)
        lookup = {c: i for i, c in enumerate(self.classes_)}
        sizes = self.sizes(values[self._image_column(column)], column)
        rows: list[list[list[float]]] = []
        for (row, cell), size in zip(values[column].items(), sizes, strict=True):
            boxes = []
            for i, obj in enumerate(self._objects(cell, column, row)):
                label = _label_key(obj[4])
                if label not in lookup:
                    raise DataError(
                        f"label column {column!r}, row {int(row) + 1}, object {i + 1}: unknown label "
                        f"{label!r}; known: {', '.join(map(repr, self.classes_[:20]))}"
                    )
                where = f", object {i + 1}"
                boxes.append([*self.check_box(obj[:4], size, column, int(row), where), float(lookup[label])])
            rows.append(boxes)
        width = max([1, *(len(b) for b in rows)])
        out = np.zeros((len(rows), width, 5), dtype=np.float32)
        out[:, :, 4] = -1.0  # padding
        for i, boxes in enumerate(rows):
            if boxes:
                out[i, : len(boxes)] = boxes
        return torch.from_numpy(out)

    def decode(self, preds: Tensor, images: pd.Series) -> list[str]:
        """(N, K, 6) detections (fractions, class id, score; class -1 = none) → per row a
        JSON list of [x0, y0, x1, y1, label, score] in pixels of that row's image."""
        self.check_fitted()
        out = []
        for dets, size in zip(preds.tolist(), self.sizes(images, self._image_column("boxes")), strict=True):
            objects = [
                [*_pixels(d[:4], *size), self.classes_[int(d[4])], round(d[5], 4)]
                for d in dets
                if d[4] >= 0 and size is not None  # no image, nothing found on it
            ]
            out.append(json.dumps(objects))
        return out

    def head_kwargs(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes_), "image_key": self.image}


class BoxTarget(_BoxTarget):
    """One box per row, `[x0, y0, x1, y1]` → (N, 4) float32 fractions of the image."""

    kind = "box"

    def fit(self, values: pd.DataFrame, column: str = "box") -> BoxTarget:  # type: ignore[override]
        check_no_missing(values[column], column)
        self.column_ = column  # no classes to learn; named in decode's messages
        return self

    def transform(self, values: pd.DataFrame, column: str = "box") -> Tensor:  # type: ignore[override]
        self.check_fitted()
        check_no_missing(values[column], column)
        sizes = self.sizes(values[self._image_column(column)], column)
        boxes = [
            self.check_box(self.parse(cell, column, int(row)), size, column, int(row))
            for (row, cell), size in zip(values[column].items(), sizes, strict=True)
        ]
        return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)

    def decode(self, preds: Tensor, images: pd.Series) -> list[str | None]:
        """(N, 5) box fractions and score → per row a JSON [x0, y0, x1, y1] in pixels
        (None for a row without an image)."""
        self.check_fitted()
        sizes = self.sizes(images, self.column_)
        return [
            None if s is None else json.dumps(_pixels(p[:4], *s))
            for p, s in zip(preds.tolist(), sizes, strict=True)
        ]

    def head_kwargs(self) -> dict[str, Any]:
        return {"image_key": self.image}


def _label_key(value: Any) -> str:
    """A label as text; 7.0 (a Parquet list of floats) reads as "7"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pixels(box: list[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [round(x0 * width, 1), round(y0 * height, 1), round(x1 * width, 1), round(y1 * height, 1)]

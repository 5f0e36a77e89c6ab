"""COCO-format detection annotations → a Plait table: one row per image, its objects
as a `boxes` cell ([[x0, y0, x1, y1, category name], ...] in pixels).

COCO boxes are [x, y, width, height]; they are turned into corners and clipped to the
image's width and height as the annotation file gives them (COCO's own boxes overrun
their image by rounding). Crowd regions (`iscrowd: 1`) are not objects and are left
out, as are boxes with no area; an image without objects gets `[]`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from plait.errors import DataError


def coco_table(
    annotations: str | Path, images: str | Path, relative_to: str | Path
) -> tuple[pd.DataFrame, int]:
    """(the table, boxes left out). Image paths are relative to `relative_to` (the
    folder the table is written to), as Plait resolves them."""
    path = Path(annotations)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"annotation file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a JSON file ({type(err).__name__}: {str(err)[:80]})") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations")
    ):
        raise DataError(
            f"{path} is not COCO detection annotations: expected lists 'images' and 'annotations'"
        )
    names = {c["id"]: str(c["name"]) for c in data.get("categories", []) if _has(c, "id", "name")}
    by_image: dict[Any, list[list]] = {}
    dropped = 0
    sizes = {i.get("id"): (i.get("width"), i.get("height")) for i in data["images"] if isinstance(i, dict)}
    for n, ann in enumerate(data["annotations"]):
        if not _has(ann, "image_id", "bbox", "category_id") or len(ann["bbox"]) != 4:
            raise DataError(f"{path}: annotation {n + 1} lacks image_id, category_id or a 4-number bbox")
        if ann.get("iscrowd"):
            dropped += 1
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        width, height = sizes.get(ann["image_id"], (None, None))
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1 = x + w if width is None else min(x + w, float(width))
        y1 = y + h if height is None else min(y + h, float(height))
        if x1 <= x0 or y1 <= y0:
            dropped += 1
            continue
        label = names.get(ann["category_id"], str(ann["category_id"]))
        by_image.setdefault(ann["image_id"], []).append(
            [round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2), label]
        )
    folder, base = Path(images), Path(relative_to)
    rows = []
    for n, image in enumerate(data["images"]):
        if not _has(image, "id", "file_name"):
            raise DataError(f"{path}: image {n + 1} lacks id or file_name")
        file = folder / image["file_name"]
        rows.append(
            {"image": os.path.relpath(file.resolve(), base.resolve()), "boxes": by_image.get(image["id"], [])}
        )
    return pd.DataFrame(rows, columns=["image", "boxes"]), dropped


def _has(item: Any, *keys: str) -> bool:
    return isinstance(item, dict) and all(k in item for k in keys)

"""`plait convert ...`: tables in other formats → Plait tables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.options import OverwriteOutput, check_writable


def coco(
    annotations: Annotated[Path, typer.Argument(help="COCO detection annotations (instances_*.json).")],
    images: Annotated[
        Path, typer.Option("--images", help="The folder the annotations' file_name values are in.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV, Parquet or JSONL table to write.")],
    overwrite: OverwriteOutput = False,
) -> None:
    """One row per image: `image` (a path relative to the table) and `boxes`, its objects
    as [x0, y0, x1, y1, category] in pixels; train with `plait train TABLE -l boxes`."""
    from plait.data.coco import coco_table
    from plait.outputs import check_prediction_path, write_predictions

    check_writable(check_prediction_path(output), overwrite, None, str(annotations))
    frame, dropped = coco_table(annotations, images, output.parent)
    objects = int(frame["boxes"].map(len).sum())
    if output.suffix.lower() != ".jsonl":  # a CSV cell, or a Parquet string (labels and numbers mix)
        frame["boxes"] = frame["boxes"].map(_json)
    rows = write_predictions([frame], output)
    left = f"; {dropped} crowd or empty box(es) left out" if dropped else ""
    print(f"wrote {rows} images with {objects} boxes to {output}{left}", file=sys.stderr)


def _json(boxes: list) -> str:
    import json

    return json.dumps(boxes)

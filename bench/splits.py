"""Fixed train/test splits of the shared data sets, for Plait's benchmark and the simple
baselines (issue 18) alike, so every figure stands beside its baseline on the same rows.

Each function writes a table into `work/<name>/` (outside the repository; media
columns hold absolute paths) with a `split` column of `train` / `test` values (Plait
carves its own validation rows from `train`) and returns a `Split`. The same call
always writes the same table: seeds are fixed and the official splits are kept.

    .venv/bin/python -m bench.splits [--work /tmp/plait-bench]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import av_digits, houses
from bench.common import SHARED_DATA
from bench.generation import first_captions
from bench.generation import flickr_table as flickr_captions_table
from bench.pretrained import easy_vqa_table
from bench.pretrained import flickr_table as flickr_scenes_table

SEED = 0
TEST_SHARE = 0.2
WORK = Path("/tmp/plait-bench")
FLICKR = SHARED_DATA / "flickr8k-1k"
CLOTHING = SHARED_DATA / "clothing-reviews"


@dataclass(frozen=True)
class Split:
    """One data set on a fixed split.

    task: `category`, `binary`, `numeric`, `text` or `retrieval` (Plait's target types);
    labels: the target column (retrieval: the two paired columns, for `--retrieval`);
    metric: the figure it is judged by, under Plait's metric name;
    columns: the input columns and the type each has in the data (what the baselines
    use; Plait is expected to infer them itself).
    """

    name: str
    table: Path
    task: str
    labels: tuple[str, ...]
    metric: str
    columns: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def frame(self) -> pd.DataFrame:
        return pd.read_csv(self.table)


def folder_for(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def seeded_split(n: int, seed: int = SEED, strata: pd.Series | None = None) -> np.ndarray:
    """`train` / `test` per row: a TEST_SHARE test share drawn with `seed`, per stratum when given."""
    rng = np.random.default_rng(seed)
    split = np.full(n, "train", dtype=object)
    if strata is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(strata == s) for s in sorted(strata.unique())]
    for rows in groups:
        test = rng.permutation(rows)[: round(TEST_SHARE * len(rows))]
        split[test] = "test"
    return split


def av_digits_split(work: Path = WORK) -> Split:
    """FSDD recordings + scikit-learn digit images (bench.av_digits); official FSDD split."""
    table = av_digits.make_table(folder_for(work, "av_digits"))
    columns = {"audio": "audio", "image": "image"}
    return Split("av_digits", table, "category", ("digit",), "accuracy", columns, "official FSDD split")


def houses_split(work: Path = WORK) -> Split:
    """Four photos + bedrooms, bathrooms, area, zipcode → log-price; seeded 80/20 split."""
    folder = folder_for(work, "houses")
    frame = pd.read_csv(houses.make_table(folder)).drop(columns="house_id")
    frame["split"] = seeded_split(len(frame))
    table = folder / "houses.csv"
    frame.to_csv(table, index=False)
    columns = {"bedrooms": "numeric", "bathrooms": "numeric", "area": "numeric", "zipcode": "category"}
    columns |= {c: "image" for c in houses.IMAGES}
    return Split("houses", table, "numeric", ("log_price",), "r2", columns, "seeded 80/20 split")


def clothing_split(work: Path = WORK) -> Split:
    """Every column of reviews.csv as given; seeded 80/20 split, stratified by the label."""
    import json

    info = json.loads((CLOTHING / "column_info.json").read_text())
    frame = pd.read_csv(CLOTHING / "reviews.csv")
    label = info["label_col"]
    frame["split"] = seeded_split(len(frame), strata=frame[label])
    table = folder_for(work, "clothing") / "reviews.csv"
    # The file's first column has no name; keep it that way ("Unnamed: 0" is pandas').
    frame.rename(columns={"Unnamed: 0": ""}).to_csv(table, index=False)
    columns = {c: "text" for c in info["text_cols"]} | {c: "category" for c in info["cat_cols"]}
    columns |= {c: "numeric" for c in info["num_cols"]}
    note = "seeded 80/20 split stratified by label; columns from column_info.json (ids not used)"
    return Split("clothing", table, "binary", (label,), "macro_f1", columns, note)


def flickr_scenes_split(work: Path = WORK) -> Split:
    """Images labelled dog / water / snow from their captions (bench.pretrained); official split."""
    table = flickr_scenes_table(folder_for(work, "flickr_scenes"))
    return Split(
        "flickr_scenes", table, "category", ("scene",), "macro_f1", {"image": "image"}, "official split"
    )


def flickr_captions_split(work: Path = WORK) -> Split:
    """One row per image → its first caption (a text target); official split."""
    frame = first_captions("image", "image")
    table = folder_for(work, "flickr_captions") / "first_captions.csv"
    frame.to_csv(table, index=False)
    note = "official split; one reference per image (its first caption)"
    return Split("flickr_captions", table, "text", ("caption",), "chrf", {"image": "image"}, note)


def flickr_retrieval_split(work: Path = WORK) -> Split:
    """Every caption with its image (5 rows per image), caption ↔ image; official split."""
    table = flickr_captions_table(folder_for(work, "flickr_retrieval"))
    columns = {"image": "image", "caption": "text"}
    return Split(
        "flickr_retrieval", table, "retrieval", ("image", "caption"), "recall@5", columns, "official split"
    )


def easy_vqa_split(work: Path = WORK) -> Split:
    """Image + question → answer; every official training question, official test split."""
    table = easy_vqa_table(folder_for(work, "easy_vqa"))
    columns = {"image": "image", "question": "text"}
    note = "official split, all 38,575 training questions"
    return Split("easy_vqa", table, "category", ("answer",), "accuracy", columns, note)


SPLITS: dict[str, Callable[[Path], Split]] = {
    "av_digits": av_digits_split,
    "houses": houses_split,
    "clothing": clothing_split,
    "flickr_scenes": flickr_scenes_split,
    "flickr_captions": flickr_captions_split,
    "flickr_retrieval": flickr_retrieval_split,
    "easy_vqa": easy_vqa_split,
}


def make_split(name: str, work: Path = WORK) -> Split:
    if name not in SPLITS:
        raise SystemExit(f"unknown data set {name!r}; choose from {', '.join(SPLITS)}")
    return SPLITS[name](work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=WORK, help="folder for the tables (outside the repo)")
    parser.add_argument("--only", default="", help="comma-separated data sets (default: all)")
    args = parser.parse_args()
    for name in args.only.split(",") if args.only else SPLITS:
        split = make_split(name, args.work)
        rows = split.frame()["split"].value_counts().to_dict()
        print(
            f"{split.name:17s} train {rows.get('train', 0):6,d}  test {rows.get('test', 0):6,d}  "
            f"{split.task:9s} {','.join(split.labels):18s} {split.metric:9s} {split.table}"
        )


if __name__ == "__main__":
    main()

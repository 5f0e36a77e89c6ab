"""Multi-label tagging of Flickr8k-1k photos (issue 7), through the real CLI.

    .venv/bin/python -m bench.multilabel

Each photo's tags are the words its five captions use (dog, water, snow, grass, ball,
child, man, woman, bike, street, people; see TAGS), stored as Parquet list cells,
which Plait infers as a multilabel target. Image only: frozen EfficientNet-Lite0
against a CNN from scratch, on the official split (817 train / 183 test photos).
Scored on the test photos: micro/macro-F1 and subset accuracy with the per-label
thresholds tuned on validation, the same with every threshold at 0.5, and mean
average precision; beside a prior baseline that gives every photo each label's
training frequency.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import torch
import yaml

from bench.common import SHARED_DATA, command_line, plait_cli, run_metrics
from plait.evaluation.metrics import TaskMetrics
from plait.predictor import Predictor

ROOT = SHARED_DATA / "flickr8k-1k"
TAGS = {
    "dog": r"\bdogs?\b",
    "water": r"\b(water|beach|ocean|lake|pool|river|swim\w*|waves?)\b",
    "snow": r"\bsnow",
    "grass": r"\b(grass\w*|field|lawn)\b",
    "ball": r"\bballs?\b",
    "child": r"\b(child|children|kids?|boys?|girls?|baby)\b",
    "man": r"\bm[ae]n\b",
    "woman": r"\bwom[ae]n\b",
    "bike": r"\b(bikes?|bicycles?|cyclists?|biker)\b",
    "street": r"\b(street|road|city|sidewalk)\b",
    "people": r"\b(people|crowd|group)\b",
}
SHOWN = ("micro_f1", "macro_f1", "subset_accuracy", "mean_ap")


def tag_table(folder: Path) -> Path:
    captions = pd.read_csv(ROOT / "captions.csv")
    text = captions.groupby("image")["caption"].apply(lambda c: " ".join(c).lower())
    split = captions.groupby("image")["split"].first()
    frame = pd.DataFrame(
        {
            "image": [str((ROOT / i).resolve()) for i in text.index],
            "tags": [[t for t, pattern in TAGS.items() if re.search(pattern, words)] for words in text],
            "split": split.loc[text.index].to_numpy(),
        }
    )
    path = folder / "flickr_tags.parquet"
    frame.to_parquet(path, index=False)
    counts = pd.Series([t for tags in frame["tags"] for t in tags]).value_counts()
    per_photo = frame["tags"].map(len).mean()
    print(f"{len(frame)} photos; tags per photo {per_photo:.2f}; counts {counts.to_dict()}")
    return path


def at_half(run: Path, table: Path) -> dict[str, float]:
    """Test metrics with every threshold at 0.5 instead of the tuned ones."""
    predictor = Predictor.load(run)
    proc = predictor.targets["tags"]
    proc.thresholds_ = [0.5] * len(proc.classes_)
    test = pd.read_parquet(table).query("split == 'test'").reset_index(drop=True)
    return predictor.evaluate(test, base_dir=ROOT)


def prior_baseline(table: Path) -> dict[str, float]:
    frame = pd.read_parquet(table)
    labels = list(TAGS)
    onehot = torch.tensor([[float(t in tags) for t in labels] for tags in frame["tags"]])
    split = frame["split"].to_numpy()
    train, test = onehot[torch.from_numpy(split == "train")], onehot[torch.from_numpy(split == "test")]
    metrics = TaskMetrics("multilabel", len(labels))  # a label is called when its frequency ≥ 0.5
    metrics.update(train.mean(0).expand(len(test), -1), test)
    return metrics.compute()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="plait-multilabel-"))
    os.environ["PLAIT_CACHE_DIR"] = str(folder / "feature-cache")
    table = tag_table(folder)
    rows = {"prior (training frequency)": prior_baseline(table)}
    variants = {
        "EfficientNet-Lite0 (frozen)": {"name": "efficientnet_lite0"},
        "CNN from scratch": {"name": "cnn"},
    }
    for name, encoder in variants.items():
        config = {
            "inputs": [{"name": "image", "type": "image", "encoder": encoder}],
            "trainer": {"epochs": 30, "patience": 5},
        }
        path = folder / f"{encoder['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        run = folder / encoder["name"]
        cli = ("train", table, "--label", "tags", "--config", path, "--out", run)
        _, wall = plait_cli(*cli)
        metrics = run_metrics(run)
        rows[name] = metrics["test"]
        rows[name + ", thresholds 0.5"] = at_half(run, table)
        print(f"{name}: {metrics['epochs']} epochs, wall {wall:.0f} s; {command_line(*cli)}")
        print("  thresholds:", {k: round(v, 3) for k, v in metrics["thresholds"]["tags"].items()})
    print("\n| model | micro-F1 | macro-F1 | subset accuracy | mAP |")
    print("|---|---|---|---|---|")
    for name, metrics in rows.items():
        print(f"| {name} | " + " | ".join(f"{metrics[m]:.3f}" for m in SHOWN) + " |")


if __name__ == "__main__":
    main()

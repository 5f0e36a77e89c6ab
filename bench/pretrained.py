"""Pretrained encoders (issue 5): the feature cache's speed-up, and accuracy against
encoders trained from scratch, all through the real CLI.

    .venv/bin/python -m bench.pretrained [--part cache|easy-vqa|flickr|houses|clothing|all]

- cache: easy-VQA (2,000 training questions), frozen EfficientNet-Lite0 + MiniLM,
  3 epochs: cache off (the backbones run in every step) against cache on (cold, then
  warm), per-epoch training seconds from metrics.json;
- easy-vqa: reference model (from scratch) vs frozen pretrained, official test split;
- flickr: does the image embedding separate scenes? Images labelled dog / water / snow
  from their captions' words, image-only classifier, scratch CNN vs EfficientNet-Lite0;
- houses: the four photos only (log-price R², 5-fold CV), scratch CNN vs EfficientNet;
- clothing: title + review text only (Recommended IND, 5-fold CV), GRU vs MiniLM.
Each part uses a fresh feature cache (PLAIT_CACHE_DIR in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from bench import clothing, houses
from bench.common import SHARED_DATA, command_line, plait_cli, run_cv, run_metrics

EFFNET = {"name": "efficientnet_lite0"}
MINILM = {"name": "minilm"}


def fresh_cache(folder: Path) -> None:
    os.environ["PLAIT_CACHE_DIR"] = str(folder / "feature-cache")


def train(folder: Path, name: str, table: Path, label: str, config: dict) -> tuple[dict, float]:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = folder / name
    _, seconds = plait_cli("train", table, "--label", label, "--config", path, "--out", run, "--overwrite")
    return run_metrics(run), seconds


def easy_vqa_table(folder: Path, train_rows: int | None = None) -> Path:
    from plait.data.builtin import easy_vqa

    frame = easy_vqa()
    if train_rows:
        train = frame[frame["split"] == "train"].sample(train_rows, random_state=0)
        frame = pd.concat([train, frame[frame["split"] == "test"].head(500)])
    path = folder / f"easy_vqa_{train_rows or 'all'}.csv"
    frame.to_csv(path, index=False)
    return path


def cache_part(folder: Path) -> None:
    fresh_cache(folder)
    table = easy_vqa_table(folder, 2000)
    rows = []
    for name, cache in (("cache off", False), ("cache on, cold", True), ("cache on, warm", True)):
        inputs = [
            {"name": "image", "type": "image", "encoder": {**EFFNET, "cache": cache}},
            {"name": "question", "type": "text", "encoder": {**MINILM, "cache": cache}},
        ]
        config = {"inputs": inputs, "trainer": {"epochs": 3, "patience": 10}}
        metrics, wall = train(folder, name.replace(" ", "_").replace(",", ""), table, "answer", config)
        epochs = " / ".join(f"{s:.2f}" for s in metrics["epoch_seconds"])
        rows.append(f"| {name} | {epochs} | {wall:.0f} | {metrics['test']['accuracy']:.3f} |")
    print("| run | training s per epoch (1 / 2 / 3) | wall s (whole command) | test accuracy |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print("command: plait train easy_vqa_2000.csv --label answer --config <run>.yaml")


def easy_vqa_part(folder: Path) -> None:
    from plait.data.builtin import DEMO_CONFIG

    fresh_cache(folder)
    table = easy_vqa_table(folder)
    pretrained = [
        {"name": "image", "type": "image", "encoder": EFFNET},
        {"name": "question", "type": "text", "encoder": MINILM},
    ]
    for name, inputs in (("scratch", DEMO_CONFIG["inputs"]), ("pretrained", pretrained)):
        metrics, wall = train(folder, name, table, "answer", {"inputs": inputs, "trainer": {"epochs": 8}})
        print(f"easy-VQA {name:10s} test accuracy {metrics['test']['accuracy']:.4f}  wall {wall:.0f} s")


SCENES = {
    "dog": r"\bdogs?\b",
    "water": r"\b(water|beach|ocean|lake|pool|river|swim\w*|wave)\b",
    "snow": r"\bsnow",
}


def flickr_table(folder: Path) -> Path:
    """One row per image, labelled by the scene words its five captions use; images
    matching no scene or several are left out."""
    root = SHARED_DATA / "flickr8k-1k"
    captions = pd.read_csv(root / "captions.csv")
    text = captions.groupby("image")["caption"].apply(lambda c: " ".join(c).lower())
    split = captions.groupby("image")["split"].first()
    labels = {}
    for image, words in text.items():
        hits = [s for s, pattern in SCENES.items() if re.search(pattern, words)]
        if len(hits) == 1:
            labels[image] = hits[0]
    frame = pd.DataFrame(
        {
            "image": [str((root / i).resolve()) for i in labels],
            "scene": list(labels.values()),
            "split": [split[i] for i in labels],
        }
    )
    path = folder / "flickr_scenes.csv"
    frame.to_csv(path, index=False)
    print("flickr scenes:", frame.groupby(["split", "scene"]).size().to_dict())
    return path


def flickr_part(folder: Path) -> None:
    fresh_cache(folder)
    table = flickr_table(folder)
    variants = {
        "scratch": {"name": "image", "type": "image", "preprocessing": {"size": 96, "horizontal_flip": True}},
        "pretrained": {"name": "image", "type": "image", "encoder": EFFNET},
    }
    for name, column in variants.items():
        metrics, wall = train(
            folder, name, table, "scene", {"inputs": [column], "trainer": {"epochs": 20, "patience": 5}}
        )
        test = metrics["test"]
        scores = f"test accuracy {test['accuracy']:.3f}  macro-F1 {test['macro_f1']:.3f}"
        print(f"flickr scenes {name:10s} {scores}  wall {wall:.0f} s")


def houses_part(folder: Path, folds: int) -> None:
    fresh_cache(folder)
    table = houses.make_table(folder)
    pretrained = [{"name": n, "type": "image", "encoder": EFFNET} for n in houses.IMAGES]
    for name, inputs in (("images, scratch", houses.PHOTOS), ("images, pretrained", pretrained)):
        config = {"inputs": inputs, "trainer": {"epochs": 40, "patience": 8, "batch_size": 32}}
        s, wall = run_cv(folder, name, config, table, "log_price", folds, 0)
        print(f"houses {name:20s} R² {s['mean']['r2']:.3f} ± {s['std']['r2']:.3f}  wall {wall:.0f} s")


def clothing_part(folder: Path, folds: int) -> None:
    fresh_cache(folder)
    pretrained = [{**column, "encoder": MINILM} for column in clothing.TEXT]
    for name, inputs in (("text, scratch GRU", clothing.TEXT), ("text, MiniLM", pretrained)):
        config = {"inputs": inputs, "trainer": {"epochs": 6, "patience": 3}}
        s, wall = run_cv(folder, name, config, clothing.TABLE, "Recommended IND", folds, 0)
        cells = "  ".join(f"{m} {s['mean'][m]:.3f} ± {s['std'][m]:.3f}" for m in ("accuracy", "roc_auc"))
        print(f"clothing {name:18s} {cells}  wall {wall:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = ["cache", "easy-vqa", "flickr", "houses", "clothing"]
    parser.add_argument("--part", choices=[*parts, "all"], default="all")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    for part in parts if args.part == "all" else [args.part]:
        folder = Path(tempfile.mkdtemp(prefix=f"plait-{part}-"))
        if part == "cache":
            cache_part(folder)
        elif part == "easy-vqa":
            easy_vqa_part(folder)
        elif part == "flickr":
            flickr_part(folder)
        elif part == "houses":
            houses_part(folder, args.folds)
        else:
            clothing_part(folder, args.folds)
    print("command:", command_line("train|cv", "TABLE", "--config", "<model>.yaml"))


if __name__ == "__main__":
    main()

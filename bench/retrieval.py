"""Image↔text retrieval on Flickr8k-1k (issue 7), through the real CLI.

    .venv/bin/python -m bench.retrieval [--epochs 40] [--seeds 2]

- plait: `plait train captions.csv --retrieval image,caption` over frozen, cached
  EfficientNet-Lite0 and MiniLM features; the towers' projections and the temperature
  train with the symmetric InfoNCE loss (5 captions per image are 5 positives). A
  linear projection (CLIP) and a two-layer MLP projection.
- baselines on the same frozen features, fitted on the same training images: a ridge
  map from text features into image-feature space (alpha chosen on held-out training
  images), and CCA (Hardoon et al. 2004) on PCA-reduced features.
All are scored by the same code (plait.evaluation.retrieval) on the 183 test images
against all their 915 captions: recall@1/5/10 and median rank, both directions.
Then zero-shot classification of the test images' scenes (dog / water / snow, from
bench.pretrained) with the prompt "a photo of a {label}", against chance.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge

from bench.common import SHARED_DATA, command_line, plait_cli, run_metrics
from bench.pretrained import flickr_table
from plait.data.processors import PairTarget
from plait.evaluation.retrieval import retrieval_metrics
from plait.predictor import Predictor

ROOT = SHARED_DATA / "flickr8k-1k"
TOWERS = ["image", "caption"]
SHOWN = ("recall@1", "recall@5", "recall@10", "median_rank")


def config(hidden_dim: int, epochs: int, seed: int) -> dict:
    return {
        "inputs": [
            # out_dim null: the raw backbone features reach the head, which projects them.
            {"name": "image", "type": "image", "encoder": {"name": "efficientnet_lite0", "out_dim": None}},
            {"name": "caption", "type": "text", "encoder": {"name": "minilm", "out_dim": None}},
        ],
        "outputs": [
            {
                "name": "retrieval",
                "columns": TOWERS,
                "head": {"name": "contrastive", "dim": 256, "hidden_dim": hidden_dim},
            }
        ],
        "trainer": {
            "epochs": epochs,
            "batch_size": 256,
            "learning_rate": 1e-3,
            "patience": 5,
            "progress": False,
        },
        "seed": seed,
    }


def frozen_features(run: Path, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each tower's frozen backbone features per row (the run's feature cache)."""
    predictor = Predictor.load(run)
    features = {}
    for column in TOWERS:
        proc = predictor.processors[column]
        proc.base_dir = ROOT  # the table's folder: media paths are relative to it
        encoded = proc.transform(frame[column], column)
        features[column] = encoded.take(torch.arange(len(frame)))[0].float().numpy()
    return features


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def score(image: np.ndarray, text: np.ndarray, frame: pd.DataFrame) -> dict[str, float]:
    groups = PairTarget(TOWERS).fit(frame).transform(frame)
    emb = torch.from_numpy(np.stack([unit(image), unit(text)], axis=1)).float()
    return retrieval_metrics(emb, groups, TOWERS)


def ridge_baseline(train: dict, test: dict, train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> dict:
    """Text features → image features (least squares with an L2 penalty)."""
    images = train_frame["image"].unique()
    held = set(np.random.default_rng(0).choice(images, size=len(images) // 5, replace=False))
    fit_rows = ~train_frame["image"].isin(held).to_numpy()
    best = None
    for alpha in (0.1, 1.0, 10.0, 100.0, 1000.0):
        model = Ridge(alpha=alpha).fit(train["caption"][fit_rows], train["image"][fit_rows])
        held_frame = train_frame[~fit_rows]
        found = score(train["image"][~fit_rows], model.predict(train["caption"][~fit_rows]), held_frame)
        if best is None or found["recall@5"] > best[1]:
            best = (alpha, found["recall@5"])
    model = Ridge(alpha=best[0]).fit(train["caption"], train["image"])
    print(f"ridge: alpha {best[0]} (held-out training images)")
    return score(test["image"], model.predict(test["caption"]), test_frame)


def cca_baseline(train: dict, test: dict, test_frame: pd.DataFrame, components: int = 64) -> dict:
    pca = {c: PCA(256, random_state=0).fit(train[c]) for c in TOWERS}
    reduce = {c: pca[c].transform(train[c]) for c in TOWERS}
    cca = CCA(n_components=components, max_iter=1000).fit(reduce["image"], reduce["caption"])
    image, text = cca.transform(
        pca["image"].transform(test["image"]), pca["caption"].transform(test["caption"])
    )
    return score(image, text, test_frame)


def row(name: str, metrics: dict) -> str:
    cells = []
    for a, b in (("image", "caption"), ("caption", "image")):
        cells += [
            f"{metrics[f'{a}_to_{b}_{m}']:.3f}" if m != "median_rank" else f"{metrics[f'{a}_to_{b}_{m}']:g}"
            for m in SHOWN
        ]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="Keep runs already in --folder.")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="plait-retrieval-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PLAIT_CACHE_DIR"] = str(folder / "feature-cache")
    table = ROOT / "captions.csv"
    frame = pd.read_csv(table)
    train_frame = frame[frame["split"] == "train"].reset_index(drop=True)
    test_frame = frame[frame["split"] == "test"].reset_index(drop=True)
    print(
        f"train {train_frame['image'].nunique()} images / {len(train_frame)} captions; "
        f"test {test_frame['image'].nunique()} / {len(test_frame)}"
    )

    results: dict[str, list[dict]] = {}
    runs = {}
    for name, hidden in (("plait, linear projection", 0), ("plait, MLP projection", 512)):
        for seed in range(args.seeds):
            slug = f"{'mlp' if hidden else 'linear'}-{seed}"
            path = folder / f"{slug}.yaml"
            path.write_text(yaml.safe_dump(config(hidden, args.epochs, seed)))
            cli = ("train", table, "--config", path, "--out", folder / slug, "--overwrite")
            wall = float("nan")
            if not (args.reuse and (folder / slug / "metrics.json").is_file()):
                _, wall = plait_cli(*cli)
            metrics = run_metrics(folder / slug)
            results.setdefault(name, []).append(metrics["test"])
            runs[name] = folder / slug
            print(
                f"{name} seed {seed}: recall@1 {metrics['test']['recall@1']:.3f}, "
                f"{metrics['epochs']} epochs, wall {wall:.0f} s; {command_line(*cli)}"
            )

    run = runs["plait, linear projection"]
    train_features, test_features = frozen_features(run, train_frame), frozen_features(run, test_frame)
    results["ridge text→image features"] = [
        ridge_baseline(train_features, test_features, train_frame, test_frame)
    ]
    results["CCA (64 of PCA-256)"] = [cca_baseline(train_features, test_features, test_frame)]

    print("\n| model | i→t R@1 | i→t R@5 | i→t R@10 | i→t med r | t→i R@1 | t→i R@5 | t→i R@10 | t→i med r |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, per_seed in results.items():
        mean = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
        print(row(name + (f" (mean of {len(per_seed)} seeds)" if len(per_seed) > 1 else ""), mean))
    print(json.dumps(results, indent=1))

    scenes = flickr_table(folder)
    test_scenes = pd.read_csv(scenes).query("split == 'test'")
    test_scenes.to_csv(folder / "scenes_test.csv", index=False)
    share = test_scenes["scene"].value_counts(normalize=True).max()
    cli = (
        "zero-shot",
        run,
        folder / "scenes_test.csv",
        "--column",
        "image",
        "--labels",
        "dog,water,snow",
        "--truth",
        "scene",
    )
    stdout, _ = plait_cli(*cli)
    print(stdout)
    print(
        f"zero-shot on {len(test_scenes)} test images; majority class share {share:.3f}; {command_line(*cli)}"
    )


if __name__ == "__main__":
    main()

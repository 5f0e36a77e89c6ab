"""Houses (Ahmed & Moustafa 2016): four photos + bedrooms, bathrooms, area, zipcode →
log-price, 5-fold cross-validation through `plait cv`.

Reports R² (and RMSE, MAE in log-price) for tabular only, images only and fused, and a
gradient-boosted-trees baseline (scikit-learn HistGradientBoostingRegressor) on the
table, on exactly the same folds.

    .venv/bin/python -m bench.houses [--folds 5] [--epochs 40]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import SHARED_DATA, command_line, run_cv
from plait.evaluation.cv import fold_ids

IMAGES = ["bathroom_image", "bedroom_image", "frontal_image", "kitchen_image"]
TABULAR = [
    {"name": "bedrooms", "type": "numeric"},
    {"name": "bathrooms", "type": "numeric"},
    {"name": "area", "type": "numeric", "preprocessing": {"log": True}},
    {"name": "zipcode", "type": "category"},
]
PHOTOS = [
    {"name": n, "type": "image", "preprocessing": {"size": 64, "horizontal_flip": True}} for n in IMAGES
]
CONFIGS = {
    "tabular only": TABULAR,
    "images only": PHOTOS,
    "fused": TABULAR + PHOTOS,
    "fused, photo dropout": TABULAR + PHOTOS,
}
# Extra trainer settings: hide each photo with probability 0.5 while training.
TRAINER_EXTRA = {"fused, photo dropout": {"modality_dropout": {n: 0.5 for n in IMAGES}}}


def make_table(folder: Path, houses: Path = SHARED_DATA / "houses") -> Path:
    frame = pd.read_csv(houses / "houses.csv")
    for col in IMAGES:
        frame[col] = [str((houses / p).resolve()) for p in frame[col]]
    frame["log_price"] = np.log(frame["price"])
    path = folder / "houses.csv"
    frame.drop(columns="price").to_csv(path, index=False)
    return path


def gbt_baseline(table: Path, folds: int, seed: int) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    frame = pd.read_csv(table)
    x = frame[["bedrooms", "bathrooms", "area", "zipcode"]].to_numpy()
    y = frame["log_price"].to_numpy()
    ids = fold_ids(len(frame), folds, seed)  # the folds `plait cv` uses
    scores = []
    for k in range(folds):
        model = HistGradientBoostingRegressor(categorical_features=[3], random_state=seed)
        model.fit(x[ids != k], y[ids != k])
        scores.append(r2_score(y[ids == k], model.predict(x[ids == k])))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores, ddof=1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    table = make_table(folder)
    gbt = gbt_baseline(table, args.folds, args.seed)
    print(f"gradient-boosted trees (table): R² {gbt['mean']:.3f} ± {gbt['std']:.3f}")
    for name, inputs in CONFIGS.items():
        trainer = {"epochs": args.epochs, "patience": 8, "batch_size": 32, **TRAINER_EXTRA.get(name, {})}
        config = {"inputs": inputs, "trainer": trainer}
        s, seconds = run_cv(folder, name, config, table, "log_price", args.folds, args.seed)
        print(
            f"{name:20s} R² {s['mean']['r2']:.3f} ± {s['std']['r2']:.3f}  "
            f"RMSE {s['mean']['rmse']:.3f}  MAE {s['mean']['mae']:.3f}  wall {seconds:.0f} s"
        )
    print(
        "command:",
        command_line(
            "cv", "houses.csv", "--label", "log_price", "--folds", args.folds, "--config", "<model>.yaml"
        ),
    )


if __name__ == "__main__":
    main()

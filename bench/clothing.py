"""Clothing reviews: title + review text + categories + numbers → Recommended IND,
5-fold cross-validation through `plait cv`, for text only, tabular only and fused.

    .venv/bin/python -m bench.clothing [--folds 5] [--epochs 6]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import SHARED_DATA, command_line, run_cv

TABLE = SHARED_DATA / "clothing-reviews" / "reviews.csv"
TEXT = [
    {"name": "Title", "type": "text"},
    {"name": "Review Text", "type": "text", "preprocessing": {"max_length": 128}},
]
TABULAR = [
    {"name": "Rating", "type": "category"},
    {"name": "Age", "type": "numeric"},
    {"name": "Positive Feedback Count", "type": "numeric", "preprocessing": {"scaling": "quantile"}},
    {"name": "Division Name", "type": "category"},
    {"name": "Department Name", "type": "category"},
    {"name": "Class Name", "type": "category"},
]
CONFIGS = {"text only": TEXT, "tabular only": TABULAR, "fused": TEXT + TABULAR}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    for name, inputs in CONFIGS.items():
        config = {"inputs": inputs, "trainer": {"epochs": args.epochs, "patience": 3}}
        s, seconds = run_cv(folder, name, config, TABLE, "Recommended IND", args.folds, args.seed)
        cells = "  ".join(
            f"{m} {s['mean'][m]:.3f} ± {s['std'][m]:.3f}" for m in ("accuracy", "macro_f1", "roc_auc")
        )
        print(f"{name:12s} {cells}  wall {seconds:.0f} s")
    print(
        "command:",
        command_line(
            "cv",
            "reviews.csv",
            "--label",
            "Recommended IND",
            "--folds",
            args.folds,
            "--config",
            "<model>.yaml",
        ),
    )


if __name__ == "__main__":
    main()

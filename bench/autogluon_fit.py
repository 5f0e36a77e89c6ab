"""Fit AutoGluon's TabularPredictor on a split table and write its test predictions.

Run by bench.baselines with the python of AutoGluon's own virtual environment (outside
the repository); it imports AutoGluon and pandas only, nothing from Plait.

    /work/venvs/autogluon/bin/python bench/autogluon_fit.py --table T --label Y
        --columns '["a", "b"]' --problem-type binary --eval-metric f1_macro
        --time-limit 600 --presets medium_quality --model-dir DIR --out preds.json
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
from autogluon.tabular import TabularPredictor

# The neural models need torch, which this environment does not install.
EXCLUDED = ["NN_TORCH", "FASTAI"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--columns", required=True, help="JSON list of input columns")
    parser.add_argument("--problem-type", required=True)
    parser.add_argument("--eval-metric", required=True)
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--presets", default="medium_quality")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    frame = pd.read_csv(args.table)
    columns = [*json.loads(args.columns), args.label]
    train = frame.loc[frame["split"] == "train", columns].reset_index(drop=True)
    test = frame.loc[frame["split"] == "test", columns].reset_index(drop=True)
    start = time.perf_counter()
    predictor = TabularPredictor(
        label=args.label,
        problem_type=args.problem_type,
        eval_metric=args.eval_metric,
        path=args.model_dir,
        verbosity=1,
    ).fit(
        train,
        time_limit=args.time_limit,
        presets=args.presets,
        excluded_model_types=EXCLUDED,
    )
    fit_seconds = time.perf_counter() - start
    features = test.drop(columns=args.label)
    out = {"pred": predictor.predict(features).tolist(), "fit_seconds": fit_seconds}
    if args.problem_type == "binary":
        proba = predictor.predict_proba(features)
        out["proba"] = proba[predictor.positive_class].tolist()
        out["positive_class"] = predictor.positive_class
    board = predictor.leaderboard(silent=True)
    out["best_model"] = str(predictor.model_best)
    out["models"] = int(len(board))
    out["leaderboard"] = board[["model", "score_val", "fit_time"]].head(5).to_dict("records")
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

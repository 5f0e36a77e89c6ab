"""Plait with no config on every shared data set, per preset, beside the simple
baselines of bench/baselines.py on the same split (issue 18).

Each run is `plait train TABLE --label L [--preset P] [--time-limit T]`: no config,
types inferred, the table's `split` column holding out the test rows. The figure is
the run's test metric (metrics.json), read beside the strongest baseline of the same
split from the baselines' JSON (run `python -m bench.baselines` first).

    .venv/bin/python -m bench.presets [--only clothing,houses] [--presets fast,medium,best]
                                      [--best-time-limit 10m] [--work /tmp/plait-bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench.common import command_line, plait_cli, run_metrics
from bench.splits import SPLITS, WORK, Split, make_split

# Baseline metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = ("rmse", "mae", "wer")


def train_args(split: Split) -> list[str]:
    if split.task == "retrieval":
        return ["--retrieval", ",".join(split.labels)]
    return [arg for label in split.labels for arg in ("--label", label)]


def strongest_baseline(results: dict, split: Split) -> tuple[str, float] | None:
    """(name, value) of the best baseline on the split's metric."""
    runs = results.get(split.name, {}).get("results", [])
    scored = [(r["baseline"], r["metrics"][split.metric]) for r in runs if split.metric in r["metrics"]]
    if not scored:
        return None
    pick = min if split.metric in LOWER_IS_BETTER else max
    return pick(scored, key=lambda item: item[1])


def candidates_alone(run: Path, split: Split) -> dict[str, float]:
    """The test metric of each candidate of an ensemble run on its own (weight 1), beside
    the ensemble's: the evidence that the ensemble is not below its best member."""
    import pandas as pd

    import plait

    predictor = plait.load(run)
    ensemble = predictor.run.ensemble
    if ensemble is None:
        return {}
    frame = pd.read_csv(split.table) if split.table.suffix == ".csv" else pd.read_parquet(split.table)
    test = frame[frame["split"].astype(str).str.lower() == "test"]
    chosen = ensemble.weights
    flat = (n for members in ensemble.members.values() for n in members)
    names = ["neural", *ensemble.networks, *dict.fromkeys(flat)]
    scores = {}
    for name in names:
        ensemble.weights = {t: {name: 1.0} for t in chosen}
        scores[name] = round(predictor.evaluate(test, base_dir=split.table.parent)[split.metric], 4)
    ensemble.weights = chosen
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--only", default="", help="comma-separated data sets (default: all)")
    parser.add_argument("--presets", default="fast,medium,best")
    parser.add_argument("--best-time-limit", default="10m", help="--time-limit of the best preset")
    args = parser.parse_args()
    baselines_file = args.work / "baselines.json"
    baselines = json.loads(baselines_file.read_text()) if baselines_file.exists() else {}
    results_file = args.work / "presets.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.only.split(",") if args.only else SPLITS:
        split = make_split(name, args.work)
        strongest = strongest_baseline(baselines, split)
        for preset in args.presets.split(","):
            run = args.work / "runs" / f"{name}-{preset}"
            shutil.rmtree(run, ignore_errors=True)  # this script's own output
            extra = ["--preset", preset]
            if preset == "best" and args.best_time_limit:
                extra += ["--time-limit", args.best_time_limit]
            cli = ["train", split.table, *train_args(split), *extra, "--out", run]
            _, seconds = plait_cli(*cli)
            metrics = run_metrics(run)
            value = metrics["test"][split.metric]
            results.setdefault(name, {})[preset] = {
                "command": command_line(*cli),
                "test": metrics["test"],
                "epochs": metrics["epochs"],
                "best_epoch": metrics["best_epoch"],
                "wall_seconds": round(seconds, 1),
                **({"leaderboard": metrics["leaderboard"]} if "leaderboard" in metrics else {}),
                **({"candidates_test": alone} if (alone := candidates_alone(run, split)) else {}),
            }
            results_file.write_text(json.dumps(results, indent=1))
            against = f"  strongest baseline {strongest[1]:.4f} ({strongest[0]})" if strongest else ""
            if alone:
                against += "  alone: " + ", ".join(f"{k} {v:.4f}" for k, v in alone.items())
            print(
                f"{name:17s} {preset:6s} {split.metric} {value:.4f}  epochs {metrics['epochs']:3d}  "
                f"wall {seconds:5.0f} s{against}",
                flush=True,
            )


if __name__ == "__main__":
    main()

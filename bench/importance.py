"""Modality importance (issue 8) on two real data sets, through the real CLI.

    .venv/bin/python -m bench.importance [--bootstrap 200]

- audio-visual digits (bench.av_digits): audio + handwritten image → digit, fused,
  10 epochs; explained on the test recordings;
- clothing reviews: title + review text + six tabular columns (one input each) →
  Recommended IND, 6 epochs; an 80/20 split (seed 0), explained on the 20%.
Prints each `plait explain RUN TEST --json` as markdown tables: per input, per
modality (remove / permute / only, with bootstrap 95% intervals), and the warnings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from bench import av_digits, clothing
from bench.common import command_line, plait_cli


def show(title: str, result: dict) -> None:
    print(f"\n### {title}: {result['metric']} {result['clean']:.3f} on {result['rows']} rows\n")
    for name, key in (("input", "input"), ("modality", "modality")):
        print(f"| {name} | method | {result['metric']} | drop | 95% interval |")
        print("|---|---|---|---|---|")
        for row in result[f"{name}s" if name == "input" else "modalities"]:
            interval = f"[{row['low']:+.3f}, {row['high']:+.3f}]" if row["low"] is not None else "—"
            print(f"| {row[key]} | {row['method']} | {row['score']:.3f} | {row['drop']:+.3f} | {interval} |")
        print()
    for note in result["warnings"]:
        print(f"- warning: {note}")


def explain(
    folder: Path, name: str, table: Path, test: Path, label: str, config: dict, bootstrap: int
) -> None:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = folder / name
    train = ("train", table, "--label", label, "--config", path, "--out", run)
    _, wall = plait_cli(*train)
    cli = ("explain", run, test, "--bootstrap", bootstrap, "--json")
    stdout, seconds = plait_cli(*cli)
    show(name, json.loads(stdout))
    print(f"\ntrain: {command_line(*train)} ({wall:.0f} s); explain: {command_line(*cli)} ({seconds:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="plait-importance-"))

    table = av_digits.make_table(folder)
    frame = pd.read_csv(table)
    test = folder / "av_test.csv"
    frame[frame["split"] == "test"].to_csv(test, index=False)
    config = yaml.safe_load(av_digits.write_config(folder, "fused", 10).read_text())
    explain(folder, "av_digits", table, test, "digit", config, args.bootstrap)

    reviews = pd.read_csv(clothing.TABLE)
    held = reviews.sample(frac=0.2, random_state=0)
    train_path, test_path = folder / "reviews_train.csv", folder / "reviews_test.csv"
    reviews.drop(held.index).to_csv(train_path, index=False)
    held.to_csv(test_path, index=False)
    config = {
        "inputs": clothing.TEXT + clothing.TABULAR,
        "tabular": "per_column",  # each tabular column is its own input, so each gets a score
        "trainer": {"epochs": 6, "patience": 3},
    }
    explain(folder, "clothing", train_path, test_path, "Recommended IND", config, args.bootstrap)


if __name__ == "__main__":
    main()

"""Fusion methods side by side on the audio-visual digits, through `plait benchmark`.

.venv/bin/python -m bench.fusions [--data av-digits|easy-vqa] [--epochs 10] [--seeds 2]
    [--fusions all] [--robustness concat,attention]

With --robustness, the seed-0 run of each named method is then evaluated on the test
rows with `plait evaluate --robustness --baseline <late-fusion run>`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from bench.av_digits import CONFIGS, make_table
from bench.common import command_line, plait_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data", choices=["av-digits", "easy-vqa"], default="av-digits")
    parser.add_argument("--fusions", default="all")
    parser.add_argument("--robustness", default="", help="methods to evaluate for robustness")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    config = folder / "model.yaml"
    if args.data == "av-digits":
        table, label = make_table(folder), "digit"
        config.write_text(yaml.safe_dump({"inputs": CONFIGS["fused"], "trainer": {"patience": 5}}))
    else:
        from plait.data.builtin import DEMO_CONFIG, easy_vqa

        table, label = folder / "easy_vqa.csv", "answer"
        easy_vqa().to_csv(table, index=False)
        config.write_text(yaml.safe_dump({"inputs": DEMO_CONFIG["inputs"]}))
    cli = (
        "benchmark",
        table,
        "--label",
        label,
        "--fusions",
        args.fusions,
        "--config",
        config,
        "--epochs",
        args.epochs,
        "--seeds",
        args.seeds,
        "--out",
        folder / "benchmark",
    )
    stdout, seconds = plait_cli(*cli)
    print(stdout)
    print(f"wall {seconds:.0f} s; results in {folder / 'benchmark'}")
    print("command:", command_line(*cli[:-2]))
    methods = [m for m in args.robustness.split(",") if m]
    if methods:
        robustness(folder, table, methods)


def robustness(folder: Path, table: Path, methods: list[str]) -> None:
    """Each method's robustness on the test rows, against the late-fusion run."""
    frame = pd.read_csv(table)
    test = folder / "test.csv"
    frame[frame["split"] == "test"].to_csv(test, index=False)
    runs = folder / "benchmark" / "runs"
    rows = []
    for method in methods:
        cli = ("evaluate", runs / f"{method}-seed0", test, "--robustness", "--json")
        stdout, seconds = plait_cli(*cli, "--baseline", runs / "late-seed0")
        report = json.loads(stdout)
        print(f"{method}: {seconds:.0f} s")
        for row in report["missing"]:
            rows.append({"method": method, "condition": row["condition"], "value": row[report["metric"]]})
        for row in report["summary"]:
            name = f"{row['input']} {row['corruption']}"
            rows.append({"method": method, "condition": f"{name} worst", "value": row["worst"]})
            rows.append({"method": method, "condition": f"{name} relative", "value": row["relative"]})
            rows.append({"method": method, "condition": f"{name} effective", "value": row["effective"]})
    pivot = pd.DataFrame(rows).pivot_table(index="condition", columns="method", values="value", sort=False)
    print("| condition | " + " | ".join(pivot.columns) + " |")
    print("|---" * (len(pivot.columns) + 1) + "|")
    for condition, values in pivot.iterrows():
        print(f"| {condition} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    print("command: plait evaluate RUN test.csv --robustness --baseline LATE_RUN --json")


if __name__ == "__main__":
    main()

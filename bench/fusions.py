"""Fusion methods side by side on the audio-visual digits, through `plait benchmark`.

.venv/bin/python -m bench.fusions [--epochs 10] [--seeds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from bench.av_digits import CONFIGS, make_table
from bench.common import command_line, plait_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data", choices=["av-digits", "easy-vqa"], default="av-digits")
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
        "all",
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


if __name__ == "__main__":
    main()

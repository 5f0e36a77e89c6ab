"""Exported models (issue 9): file size, export time, parity and prediction speed of
the reference model in each format, against the run itself.

    .venv/bin/python -m bench.export [--epochs 1] [--rows 2000]

Trains the reference model (image CNN + question GRU, concatenated) on easy-VQA,
exports it as ONNX, TorchScript and torch.export, and predicts the same test rows
with `Predictor.predict` (eager PyTorch) and with `plait.runtime` on each file.
Prediction seconds include reading the images and preprocessing, as a user sees it
(best of 3 calls).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from bench.common import plait_cli
from plait.data.builtin import DEMO_CONFIG, easy_vqa
from plait.export import export_run
from plait.predictor import Predictor
from plait.runtime import Runtime


def timed(
    predict: Callable[[Path], pd.DataFrame], table: Path, repeats: int = 3
) -> tuple[pd.DataFrame, float]:
    """Predictions and the best wall seconds of `repeats` calls (the first also warms
    the file cache, which would otherwise favour whichever format runs second)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = predict(table)
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = Path(tempfile.mkdtemp(prefix="plait-export-"))
    frame = easy_vqa()
    table = folder / "vqa.csv"
    frame.to_csv(table, index=False)
    test = folder / "test.csv"
    frame[frame["split"] == "test"].head(args.rows).to_csv(test, index=False)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({**DEMO_CONFIG, "trainer": {"epochs": args.epochs, "progress": False}}))
    plait_cli("train", table, "--label", "answer", "--config", config, "--out", folder / "run")

    predictor = Predictor.load(folder / "run")
    expected, eager = timed(predictor.predict, test)
    probs = [c for c in expected.columns if "_prob_" in c]
    print(f"{len(expected)} test rows; eager PyTorch (Predictor.predict): {eager:.2f} s")
    print("| format | file MiB | export s | predict s (table → predictions) | max abs diff vs run |")
    print("|---|---|---|---|---|")
    print(f"| run folder (eager PyTorch) | — | — | {eager:.2f} | 0 |")
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt"), ("pt2", ".pt2")):
        start = time.perf_counter()
        path = export_run(folder / "run", fmt, folder / f"model{suffix}")
        exported = time.perf_counter() - start
        got, seconds = timed(Runtime.load(path).predict, test)
        diff = float(np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max())
        size = path.stat().st_size / 2**20
        print(f"| {fmt} | {size:.2f} | {exported:.1f} | {seconds:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()

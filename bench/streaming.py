"""Peak memory of training on a table 1× and 10× as big: streamed shards vs one file.

Builds a synthetic table (a distinct 32×32 PNG per row, a short text, a number, a
3-class label), written once as a folder of Parquet shards (row groups of 2,000) and
once as a single Parquet file, at N and 10·N rows. Trains one epoch of the reference
model on each with `plait train` in a subprocess, sampling the memory of the whole
process tree (the trainer and its loader workers) every 0.2 s as the sum of each
process's PSS (proportional set size: pages shared after fork count once, split
between the processes, where RSS would count them in each).

    .venv/bin/python -m bench.streaming [--rows 10000] [--work /tmp/plait-bench-stream]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from PIL import Image

COLOURS = np.array([[200, 40, 40], [40, 180, 60], [40, 60, 200]])
WORDS = np.array(["small", "square", "picture", "with", "some", "noise", "in", "it"])


def make_images(folder: Path, rows: int) -> None:
    """images/<i>.png for i < rows, each distinct (noise), coloured by class i % 3."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(rows):
        path = folder / f"{i}.png"
        if not path.exists():
            pixels = np.clip(COLOURS[i % 3] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path)


def make_table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    label = np.array(["red", "green", "blue"])[np.arange(rows) % 3]
    text = [" ".join(rng.choice(WORDS, 6)) for _ in range(rows)]
    return pd.DataFrame(
        {
            "image": [f"images/{i}.png" for i in range(rows)],
            "note": text,
            "x": rng.normal(size=rows),
            "y": label,
        }
    )


def write(frame: pd.DataFrame, work: Path, name: str) -> tuple[Path, Path]:
    """(shard folder, single file), both beside images/ so relative paths resolve."""
    shards = work / f"{name}-shards"
    if not shards.exists():
        shards.mkdir()
        # Relative media paths resolve against the shards' folder.
        shifted = frame.assign(image="../" + frame["image"])
        for i, start in enumerate(range(0, len(frame), 10_000)):
            part = shifted.iloc[start : start + 10_000]
            part.to_parquet(shards / f"part-{i:04d}.parquet", row_group_size=2_000, index=False)
    single = work / f"{name}.parquet"
    if not single.exists():
        frame.to_parquet(single, index=False)
    return shards, single


def peak_pss(command: list[str]) -> tuple[float, float, float]:
    """(peak MiB of the process tree, peak MiB of the trainer process alone, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak, peak_main = psutil.Process(proc.pid), 0, 0
    while proc.poll() is None:
        try:
            main_pss = root.memory_full_info().pss
            children = sum(p.memory_full_info().pss for p in root.children(recursive=True) if p.is_running())
            peak, peak_main = max(peak, main_pss + children), max(peak_main, main_pss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    if proc.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return peak / 2**20, peak_main / 2**20, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/plait-bench-stream"))
    args = parser.parse_args()
    work = args.work
    make_images(work / "images", 10 * args.rows)
    results = []
    for scale in (1, 10):
        frame = make_table(scale * args.rows)
        shards, single = write(frame, work, f"x{scale}")
        for mode, data in (("streamed shards", shards), ("one file in memory", single)):
            run = work / "runs" / f"{mode.split()[0]}-{scale}"
            command = [
                sys.executable,
                "-m",
                "plait.cli",
                "train",
                str(data),
                "--label",
                "y",
                "--epochs",
                "1",
                "--out",
                str(run),
                "--overwrite",
                "--no-cache",
            ]
            mib, main_mib, seconds = peak_pss(command)
            metrics = json.loads((run / "metrics.json").read_text())
            results.append((scale * args.rows, mode, mib, seconds, metrics["validation"]["accuracy"]))
            print(
                f"{scale * args.rows:>8} rows  {mode:<20} peak {mib:7.0f} MiB (trainer {main_mib:.0f})  "
                f"{seconds:6.1f} s  "
                f"val accuracy {metrics['validation']['accuracy']:.3f}",
                flush=True,
            )
    for mode in ("streamed shards", "one file in memory"):
        small, big = (r[2] for r in results if r[1] == mode)
        print(f"{mode}: peak at 10× / peak at 1× = {big / small:.2f}")


if __name__ == "__main__":
    main()

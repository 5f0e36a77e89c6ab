"""Shared helpers for the bench scripts: run the real CLI, time it, read metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def plait_cli(*args: str | Path) -> tuple[str, float]:
    """Run `plait ARGS`; return stdout and wall seconds. Exits on failure."""
    command = [sys.executable, "-m", "plait.cli", *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stdout, seconds


def run_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def command_line(*args: str | Path) -> str:
    return "plait " + " ".join(f'"{a}"' if " " in str(a) else str(a) for a in args)


def run_cv(
    folder: Path, name: str, config: dict, table: Path, label: str, folds: int, seed: int
) -> tuple[dict, float]:
    """Write `config` for model `name`, run `plait cv` on it; return the summary and wall seconds."""
    slug = "".join(c if c.isalnum() else "_" for c in name)
    path = folder / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = (
        "cv",
        table,
        "--label",
        label,
        "--folds",
        folds,
        "--config",
        path,
        "--seed",
        seed,
        "--out",
        folder / slug,
        "--json",
    )
    stdout, seconds = plait_cli(*cli)
    return json.loads(stdout), seconds

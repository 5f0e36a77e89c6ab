"""End-to-end on real data: the demo and the shared data sets (skipped when absent)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow


def test_demo_one_epoch(tmp_path: Path):
    pytest.importorskip("easy_vqa")
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "plait.cli", "demo", "--epochs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy" in result.stdout and "macro_f1" in result.stdout
    assert f"run folder: {out}" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rows"] == {"train": 34717, "val": 3858, "test": 9673}
    assert metrics["test"]["accuracy"] > 0.5  # 13 classes; one epoch already learns most of it


def test_clothing_reviews_text_category_numeric(tmp_path: Path):
    table = SHARED_DATA / "clothing-reviews" / "reviews.csv"
    if not table.exists():
        pytest.skip(f"{table} not present")
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "plait.cli",
            "train",
            str(table),
            "--label",
            "Recommended IND",
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())["validation"]
    # The Rating column alone predicts the label well; a working model beats the
    # majority-class rate (~0.82) clearly.
    assert metrics["roc_auc"] > 0.9

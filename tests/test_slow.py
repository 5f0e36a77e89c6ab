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
    table = needs("clothing-reviews", "reviews.csv")
    metrics = train_cli(table, "Recommended IND", None, tmp_path / "run", epochs=2)["validation"]
    # The Rating column alone predicts the label well; a working model beats the
    # majority-class rate (~0.82) clearly.
    assert metrics["roc_auc"] > 0.9


def needs(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def train_cli(table: Path, label: str, config: dict | None, out: Path, epochs: int = 1) -> dict:
    """`plait train` as a subprocess (config inferred when None); returns metrics.json."""
    import yaml

    args = [sys.executable, "-m", "plait.cli", "train", str(table), "--label", label]
    if config is not None:
        config_path = out.parent / f"{out.name}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        args += ["--config", str(config_path)]
    result = subprocess.run(
        [*args, "--epochs", str(epochs), "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


def test_audio_visual_digits_one_epoch(tmp_path: Path):
    pytest.importorskip("sklearn")
    fsdd = needs("fsdd", "recordings.csv").parent
    from bench.av_digits import CONFIGS, make_table

    table = make_table(tmp_path, fsdd)
    config = {"inputs": CONFIGS["fused"], "outputs": [{"name": "digit", "type": "category"}]}
    metrics = train_cli(table, "digit", config, tmp_path / "av")
    assert metrics["rows"]["test"] == 300  # FSDD takes 0-4 of every speaker and digit
    assert metrics["test"]["accuracy"] > 0.3  # ten classes; one epoch is well above chance


def test_houses_four_photos_and_table_one_epoch(tmp_path: Path):
    houses = needs("houses", "houses.csv").parent
    from bench.houses import CONFIGS, make_table

    table = make_table(tmp_path, houses)
    metrics = train_cli(table, "log_price", {"inputs": CONFIGS["fused"]}, tmp_path / "houses")
    assert set(metrics["validation"]) == {"rmse", "mae", "r2"}
    import yaml

    config = yaml.safe_load((tmp_path / "houses" / "config.yaml").read_text())
    groups = {i["name"]: i["group"] for i in config["inputs"]}
    assert {groups[c] for c in ("bathroom_image", "bedroom_image", "frontal_image", "kitchen_image")} == {
        "image"
    }

"""Same seed and data → same weights, predictions and metrics on CPU; the run records
the data's content hash."""

import json
from pathlib import Path

import pandas as pd
from PIL import Image

import plait
from plait.data.fingerprint import fingerprint
from tests.conftest import make_table, tiny_config


def test_same_seed_same_weights_predictions_metrics_and_data_hash(tmp_path: Path):
    """The one pair of training runs that checks reproducibility (keep it one pair)."""
    make_table(tmp_path, rows=24).to_csv(tmp_path / "t.csv", index=False)
    config = tiny_config(trainer={"epochs": 2, "progress": False, "accelerator": "cpu", "num_workers": 0})
    infos, metrics, predictions = [], [], []
    for name in ("a", "b"):
        predictor = plait.fit(
            tmp_path / "t.csv", label="colour", config=config, out=tmp_path / name, seed=5, verbose=False
        )
        predictions.append(predictor.predict(tmp_path / "t.csv"))
        infos.append(json.loads((tmp_path / name / "plait.json").read_text()))
        metrics.append(json.loads((tmp_path / name / "metrics.json").read_text())["validation"])
    assert metrics[0] == metrics[1]
    pd.testing.assert_frame_equal(predictions[0], predictions[1])
    assert infos[0]["sha256"]["model.safetensors"] == infos[1]["sha256"]["model.safetensors"]  # same weights
    assert infos[0]["data"] == infos[1]["data"] and infos[0]["data"]["media_files"] > 0
    assert {"numpy", "torchmetrics", "pillow", "safetensors", "pydantic"} <= set(infos[0]["versions"])
    assert infos[0]["machine"]["cpu_count"]
    config_yaml = (tmp_path / "a" / "config.yaml").read_text()
    assert "learning_rate:" in config_yaml and "seed: 5" in config_yaml  # every default written


def test_data_hash_changes_with_a_media_file_or_a_cell(tmp_path: Path):
    frame = make_table(tmp_path, rows=6)
    before = fingerprint(frame, tmp_path, ["image"])
    assert before == fingerprint(frame.copy(), tmp_path, ["image"])
    Image.new("RGB", (16, 16)).save(tmp_path / "images" / "1.png")
    after = fingerprint(frame, tmp_path, ["image"])
    assert after["media_sha256"] != before["media_sha256"] and after["sha256"] != before["sha256"]
    assert after["table_sha256"] == before["table_sha256"]
    edited = frame.assign(caption=frame["caption"].where(frame.index != 0, "changed"))
    assert fingerprint(edited, tmp_path, ["image"])["table_sha256"] != after["table_sha256"]

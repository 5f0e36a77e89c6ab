"""Modality importance on a table where only the image knows the label."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from plait.data.processors import Encoded
from plait.errors import ConfigError
from plait.evaluation.importance import _permuted, benchmark_notes
from plait.train import fit
from tests.conftest import make_table, tiny_config
from tests.test_cli import plait_in


@pytest.fixture(scope="module")
def image_only_signal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run, table): captions never name the colour, so only the image tells it."""
    folder = tmp_path_factory.mktemp("importance")
    frame = make_table(folder, rows=90)
    frame["caption"] = [f"a square number {i % 7}" for i in range(len(frame))]
    table = folder / "table.csv"
    frame.to_csv(table, index=False)
    config = tiny_config()
    config["inputs"] = config["inputs"][:2]  # image + caption
    config["trainer"]["epochs"] = 8
    fit(table, label="colour", config=config, out=folder / "run", verbose=False)
    return folder / "run", table


def test_the_image_carries_the_signal(image_only_signal: tuple[Path, Path]):
    run, table = image_only_signal
    result = plait_in("explain", run, table, "--bootstrap", "50", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["metric"] == "accuracy" and found["clean"] > 0.9
    rows = {(r["input"], r["method"]): r for r in found["inputs"]}
    image, caption = rows[("image", "remove")], rows[("caption", "remove")]
    assert image["drop"] > 0.3 and image["low"] > 0  # interval excludes zero
    assert abs(caption["drop"]) < 0.1 and caption["low"] <= 0 <= caption["high"]
    assert rows[("image", "permute")]["drop"] > 0.3
    assert rows[("caption", "only")]["score"] < 0.6  # the caption alone is near chance (1/3)
    assert any("relies almost entirely on image" in w for w in found["warnings"])
    # Per class: every colour loses recall without the image.
    per_class = [r for r in found["per_class"] if r["input"] == "image" and r["method"] == "remove"]
    assert {r["class"] for r in per_class} == {"red", "green", "blue"}
    saved = json.loads((run / "importance.json").read_text())  # kept for the run's report
    assert saved["inputs"] == found["inputs"]


def test_rows_get_contributions_and_saliency_maps(image_only_signal: tuple[Path, Path], tmp_path: Path):
    run, table = image_only_signal
    result = plait_in("explain", run, table, "--rows", "1,6", "--output-dir", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["row"] for r in rows] == [1, 6]
    assert rows[0]["contribution_image"] > rows[0]["contribution_caption"]
    png = Path(rows[0]["saliency_image"])
    assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rows[1]["saliency_image"].startswith("none: no image")  # row 6 has no image
    assert rows[1]["contribution_image"] == 0.0


def test_permuting_moves_cells_with_their_presence():
    column = Encoded(torch.tensor([[10.0], [20.0], [30.0]]), torch.tensor([True, False, True]))

    class Data:  # the two attributes _permuted reads
        columns = {"x": column, "y": column}
        keep = torch.tensor([0, 1, 2])

    shuffled = _permuted(Data(), ["x"], torch.tensor([2, 0, 1]))  # type: ignore[arg-type]
    values, present = shuffled.columns["x"].take(torch.arange(3))
    assert values.squeeze(1).tolist() == [30.0, 10.0, 20.0] and present.tolist() == [True, True, False]
    assert shuffled.columns["y"] is column  # other inputs untouched


def test_benchmark_notes_flag_a_single_input_that_matches_fusion(tmp_path: Path):
    pd.DataFrame(
        {
            "method": ["concat", "only audio", "only image"],
            "accuracy": [0.95, 0.951, 0.70],
            "accuracy_std": [0.01, 0.0, 0.0],
        }
    ).to_csv(tmp_path / "summary.csv", index=False)
    notes = benchmark_notes(tmp_path, "concat")
    assert len(notes) == 1 and "audio alone scores 0.951" in notes[0]
    with pytest.raises(ConfigError, match="no 'film' model"):
        benchmark_notes(tmp_path, "film")
    with pytest.raises(ConfigError, match="plait benchmark folder"):
        benchmark_notes(tmp_path / "nothing", "concat")


def test_explain_refuses_what_it_cannot_measure(image_only_signal: tuple[Path, Path]):
    from plait.predictor import Predictor

    run, table = image_only_signal
    predictor = Predictor.load(run)
    with pytest.raises(ConfigError, match="unknown target 'price'"):
        predictor.explain(table, target="price")
    with pytest.raises(ConfigError, match="--rows must be row numbers from 1 to 90"):
        predictor.explain_rows(table, [0])


def test_regression_without_bootstrap(table_csv: Path, tmp_path: Path):
    config = tiny_config()
    config["trainer"]["epochs"] = 2
    predictor = fit(table_csv, label="price", config=config, out=tmp_path / "run", verbose=False)
    result = predictor.explain(table_csv, bootstrap=0)
    assert result.metric == "r2" and len(result.per_class) == 0
    assert set(result.inputs["input"]) == {"caption", "image", "tabular"}
    assert result.inputs["low"].isna().all()  # no resamples, no intervals
    assert all(r["low"] is None for r in result.to_dict()["inputs"])  # strict JSON

"""Robustness evaluation: conditions, curves and MultiBench's summaries."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import plait
from plait.errors import ConfigError
from plait.evaluation.robustness import summarise
from plait.inference import table_dataset
from tests.conftest import make_table, tiny_config


def curve(key: str, values: list[float]) -> pd.DataFrame:
    levels = np.linspace(0, 1, len(values))
    return pd.DataFrame({"input": key, "corruption": "noise", "level": levels, "accuracy": values})


def test_relative_is_the_mean_area_and_effective_compares_drops():
    model = curve("image", [0.9, 0.8, 0.7])  # drops 0.1 per half level
    base = curve("image", [0.6, 0.6, 0.3])
    row = summarise(model, "accuracy", base).iloc[0]
    assert row["clean"] == 0.9 and row["worst"] == pytest.approx(0.7)
    assert row["relative"] == pytest.approx((0.85 + 0.75) / 2)
    # drops: model 0, -0.1, -0.2; baseline 0, 0, -0.3 → differences 0, -0.1, +0.1,
    # whose trapezoid area over [0, 1] is 0.5 · (0 - 0.1) / 2 + 0.5 · (-0.1 + 0.1) / 2
    assert row["effective"] == pytest.approx(-0.025)
    assert np.isnan(summarise(model, "accuracy").iloc[0]["effective"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("robust")
    make_table(folder, rows=30).to_csv(folder / "t.csv", index=False)
    for name, fusion in (("run", "concat"), ("late", "late")):
        # 10 epochs: the model learns the colour (the noise test needs a model that does).
        config = tiny_config(fusion=fusion)
        config["trainer"]["epochs"] = 10
        plait.fit(folder / "t.csv", label="colour", config=config, out=folder / name, verbose=False)
    return folder / "run", folder / "late", folder / "t.csv"


def test_conditions_cover_every_input(runs):
    run, late, table = runs
    predictor = plait.load(run)
    report = predictor.robustness(table, levels=[0.5, 1.0], baseline=plait.load(late))
    keys = sorted(predictor.processors)  # caption, image, tabular
    assert list(report.missing["condition"]) == [f"without {k}" for k in keys] + [f"only {k}" for k in keys]
    _, dataset = table_dataset(predictor.run, table, with_targets=True)
    without_image = report.missing.set_index("condition").loc["without image", "accuracy"]
    assert without_image == predictor.evaluate_dataset(dataset, drop={"image"})["accuracy"]
    assert report.clean == predictor.evaluate(table)["accuracy"]
    pairs = set(zip(report.summary["input"], report.summary["corruption"], strict=True))
    assert pairs == {
        ("caption", "word_dropout"),
        ("caption", "typos"),
        ("image", "gaussian_noise"),
        ("image", "blur"),
        ("tabular", "gaussian_noise"),
        ("tabular", "swap"),
    }
    assert list(report.noise["level"][:3]) == [0.0, 0.5, 1.0]
    assert report.summary["effective"].notna().all()
    assert all(p.perturb is None for p in predictor.processors.values())  # hooks removed


def test_noise_changes_predictions_and_is_repeatable(runs, tmp_path):
    _, _, table = runs
    config = tiny_config(inputs=[tiny_config()["inputs"][1]])  # the caption alone names the colour
    config["trainer"]["epochs"] = 10
    predictor = plait.fit(table, label="colour", config=config, out=tmp_path / "caption", verbose=False)
    first = predictor.robustness(table, levels=[1.0], seed=1)
    again = predictor.robustness(table, levels=[1.0], seed=1)
    assert first.noise.equals(again.noise)
    typos = first.noise[(first.noise["corruption"] == "typos") & (first.noise["level"] == 1.0)]
    assert typos["accuracy"].iloc[0] < first.clean  # every word misspelt: the caption is useless


def test_levels_must_lie_in_zero_one(runs):
    with pytest.raises(ConfigError, match="noise levels must lie in"):
        plait.load(runs[0]).robustness(runs[2], levels=[0.0, 2.0])

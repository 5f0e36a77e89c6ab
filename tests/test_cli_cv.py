"""`plait cv` never feeds its fold column (or any split or id column) to the model, and
each fold run evaluates on the user's own table (issue 23, item 3)."""

import json
from pathlib import Path

import pytest
import yaml

from plait.evaluation.cv import FOLD_COLUMN
from tests.conftest import TINY_CONFIG, make_table
from tests.test_cli import plait_in_each


def test_fold_runs_read_only_the_users_columns_and_evaluate_on_its_table(tmp_path: Path):
    # Inputs inferred (no inputs: list), as a new user runs it: caption, size, shop.
    make_table(tmp_path, rows=24).drop(columns=["image"]).to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY_CONFIG, "trainer": {**TINY_CONFIG["trainer"], "epochs": 1}}))
    cv_dir = tmp_path / "cv"
    table = tmp_path / "t.csv"
    cv, *evaluations = plait_in_each(
        ["cv", table, "-l", "colour", "--folds", "2", "-c", config, "--out", cv_dir, "--json"],
        ["evaluate", cv_dir / "fold-1", table, "--json"],
        ["evaluate", cv_dir / "fold-2", table, "--json"],
    )
    assert cv.returncode == 0, cv.stderr[-2000:]
    for k in (1, 2):
        fold = yaml.safe_load((cv_dir / f"fold-{k}" / "config.yaml").read_text())
        inputs = {i["name"] for i in fold["inputs"]}
        assert inputs == {"caption", "size", "shop", "is_red", "price"}, inputs
        assert fold["split_column"] == FOLD_COLUMN
        assert "id" in fold["id_columns"]
        assert not inputs & {FOLD_COLUMN, "id"}
    for result in evaluations:
        assert result.returncode == 0, result.stderr[-2000:]
        assert set(json.loads(result.stdout)) == {"accuracy", "macro_f1", "balanced_accuracy"}


@pytest.mark.slow  # two folds, each with its fold networks
def test_cv_trains_the_candidates_it_is_given(tmp_path: Path):
    from typer.testing import CliRunner

    from plait.cli import app

    make_table(tmp_path, rows=24).drop(columns=["image"]).to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "c.yaml"
    settings = {k: v for k, v in TINY_CONFIG.items() if k != "candidates"}
    config.write_text(yaml.safe_dump({**settings, "trainer": {**TINY_CONFIG["trainer"], "epochs": 1}}))
    args = ["cv", str(tmp_path / "t.csv"), "-l", "colour", "--folds", "2", "-c", str(config)]
    result = CliRunner().invoke(app, [*args, "--candidates", "neural,linear", "--out", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    for k in (1, 2):
        weights = json.loads((tmp_path / "cv" / f"fold-{k}" / "ensemble.json").read_text())["weights"]
        assert set(weights["colour"]) <= {"neural", "linear"} and weights["colour"]
    bad = CliRunner().invoke(app, [*args, "--candidates", "xgboost", "--out", str(tmp_path / "bad")])
    assert (
        bad.exit_code == 2
        and "Input should be 'neural', 'lightgbm', 'linear' or 'neural_attention'" in bad.stderr
    )
    assert not (tmp_path / "bad").exists()

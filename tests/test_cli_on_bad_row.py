"""--on-bad-row on evaluate, predict and explain (over the run's own setting), the count
of rows touched as one line on stderr, and unusable cells in the schema's "missing"
column (issue 23, item 8)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from plait.errors import ConfigError
from plait.predictor import Predictor
from plait.train import fit
from tests.conftest import make_table, tiny_config
from tests.data.test_streaming import tabular_frame, write_shards
from tests.test_cli import plait_many

MISSING = "2 row(s) with an unusable cell evaluated with those cells treated as missing"
SKIPPED = "2 row(s) with an unusable cell skipped"
PREDICTED = "2 row(s) with an unusable cell predicted with those cells treated as missing"


def bad_table(folder: Path) -> Path:
    """24 rows; row 4 names an image that does not exist, row 11 has text in `size`.
    (make_table also leaves row 6's image and row 8's caption empty.)"""
    frame = make_table(folder, rows=24).astype({"size": object})
    frame.loc[3, "image"] = "images/gone.png"
    frame.loc[10, "size"] = "1,200"
    frame.to_csv(folder / "bad.csv", index=False)
    return folder / "bad.csv"


def schema_row(stderr: str, column: str) -> list[str]:
    """The cells of `column`'s row in the schema table training prints."""
    line = next(line for line in stderr.splitlines() if line.startswith(f"│ {column} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


@pytest.mark.slow
def test_evaluate_predict_explain_take_on_bad_row(tmp_path: Path):
    table = bad_table(tmp_path / "data")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    run, out = tmp_path / "run", tmp_path / "out"
    results = plait_many(
        [
            "train",
            table,
            "-l",
            "colour",
            "-c",
            config,
            "--epochs",
            "1",
            "--on-bad-row",
            "missing",
            "--out",
            run,
        ],
        ["evaluate", run, table, "--json"],  # the run's own setting: missing
        ["evaluate", run, table, "--json", "--on-bad-row", "error"],
        ["evaluate", run, table, "--json", "--on-bad-row", "skip"],
        ["predict", run, table, "-o", out / "skip.csv", "--on-bad-row", "skip"],
        ["predict", run, table, "-o", out / "error.csv", "--on-bad-row", "error"],
        ["explain", run, table, "--bootstrap", "0", "--json", "--on-bad-row", "skip"],
        ["evaluate", run, table, "--on-bad-row", "sometimes"],
    )
    train, evaluate, strict, skip, predict, predict_strict, explain, unknown = results
    assert train.returncode == 0, train.stderr[-2000:]
    # 24 rows: image empty in one (row 6) and unreadable in one, size unusable in one.
    assert schema_row(train.stderr, "image")[-1] == "8%"
    assert schema_row(train.stderr, "size")[-1] == "4%"
    assert schema_row(train.stderr, "shop")[-1] == "0%"
    bad_line = (
        "2 row(s) with an unreadable file or a bad number kept with the unusable cells treated as missing"
    )
    assert bad_line in train.stderr.splitlines()
    columns = {c["name"]: c["missing"] for c in json.loads((run / "summary.json").read_text())["columns"]}
    assert columns["image"] == pytest.approx(2 / 24, abs=1e-4) and columns["size"] == pytest.approx(
        1 / 24, abs=1e-4
    )

    assert (evaluate.returncode, evaluate.stderr) == (0, f"warning: {MISSING}\n"), evaluate.stderr[-2000:]
    assert set(json.loads(evaluate.stdout)) == {"accuracy", "macro_f1", "balanced_accuracy"}
    assert strict.returncode == 2 and strict.stdout == ""
    assert strict.stderr.startswith("error: column 'image', row 4: image file not found")
    assert len(strict.stderr.splitlines()) == 1
    assert (skip.returncode, skip.stderr) == (0, f"warning: {SKIPPED}\n"), skip.stderr[-2000:]

    # Predicting keeps one row per input row, the unusable cells treated as missing.
    assert predict.returncode == 0, predict.stderr[-2000:]
    assert predict.stderr.splitlines() == [
        f"warning: {PREDICTED}",
        f"wrote 24 predictions to {out / 'skip.csv'}",
    ]
    assert len(pd.read_csv(out / "skip.csv")) == 24
    assert predict_strict.returncode == 2 and not (out / "error.csv").exists()
    assert len(predict_strict.stderr.splitlines()) == 1

    assert (explain.returncode, explain.stderr) == (0, f"warning: {SKIPPED}\n"), explain.stderr[-2000:]
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "error: command line: on_bad_row: Input should be 'error', 'missing' or 'skip', got 'sometimes'\n"
    )


def test_predictor_load_overrides_the_runs_setting(tmp_path: Path):
    make_table(tmp_path, rows=12).to_csv(tmp_path / "t.csv", index=False)
    fit(tmp_path / "t.csv", label="colour", config=tiny_config(), out=tmp_path / "run", verbose=False)
    assert Predictor.load(tmp_path / "run").config.on_bad_row == "error"
    assert Predictor.load(tmp_path / "run", on_bad_row="skip").config.on_bad_row == "skip"
    with pytest.raises(ConfigError, match="on_bad_row: Input should be 'error', 'missing' or 'skip'"):
        Predictor.load(tmp_path / "run", on_bad_row="drop")


@pytest.mark.slow
def test_shard_folders_take_on_bad_row(tmp_path: Path):
    frame = tabular_frame(90).assign(row_id=[f"r{i}" for i in range(90)])
    trainer = {"epochs": 1, "batch_size": 16, "eval_batch_size": 8, "num_workers": 0, "progress": False}
    fit(frame, "y", {"trainer": trainer, "id_columns": ["row_id"]}, out=tmp_path / "run", verbose=False)
    bad = frame.astype({"x": str})
    bad.loc[[5, 40, 80], "x"] = ["1,200", "n/a?", "12 kg"]  # one in each shard
    shards = write_shards(tmp_path, bad, shards=3)
    run, out = tmp_path / "run", tmp_path / "p.csv"
    strict, missing, skip, predict = plait_many(
        ["evaluate", run, shards, "--json"],
        ["evaluate", run, shards, "--json", "--on-bad-row", "missing"],
        ["evaluate", run, shards, "--json", "--on-bad-row", "skip"],
        ["predict", run, shards, "-o", out, "--on-bad-row", "skip"],
    )
    assert strict.returncode == 2 and "shard part-000.parquet" in strict.stderr
    assert len(strict.stderr.splitlines()) == 1
    assert (missing.returncode, missing.stderr) == (0, f"warning: {MISSING.replace('2', '3', 1)}\n")
    assert (skip.returncode, skip.stderr) == (0, f"warning: {SKIPPED.replace('2', '3', 1)}\n")
    assert predict.returncode == 0, predict.stderr[-2000:]
    assert predict.stderr.splitlines() == [
        f"warning: {PREDICTED.replace('2', '3', 1)}",
        f"wrote 90 predictions to {out}",
    ]
    assert list(pd.read_csv(out)["row_id"]) == [f"r{i}" for i in range(90)]

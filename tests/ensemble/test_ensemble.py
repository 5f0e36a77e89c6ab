"""A run with candidates beside the network (--candidates, preset best): fitted, weighted,
saved without pickle, and used by every path that predicts."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import plait
from plait import inference
from plait.cli import app
from plait.errors import ConfigError, RunFolderError
from tests.conftest import TINY_ENCODERS, make_table, tiny_config


def signal_table(folder: Path, rows: int = 90) -> Path:
    """The tiny table plus `hint`, a number that gives the colour away: the trees and the
    linear probe can learn from it as well as the network."""
    frame = make_table(folder, rows=rows)
    rng = np.random.default_rng(1)
    codes = frame["colour"].map({"red": 0.0, "green": 1.0, "blue": 2.0})
    frame["hint"] = codes + rng.normal(0, 0.1, rows)
    frame.to_csv(folder / "t.csv", index=False)
    return folder / "t.csv"


def config(candidates: list[str]) -> dict:
    inputs = [*tiny_config()["inputs"], {"name": "hint", "type": "numeric"}]
    cfg = tiny_config(inputs=inputs, candidates=candidates)
    cfg["trainer"].update(epochs=2, val_fraction=0.3)
    return cfg


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ensemble")
    table = signal_table(folder)
    plait.fit(
        table,
        label="colour",
        config=config(["neural", "lightgbm", "linear"]),
        out=folder / "run",
        verbose=False,
    )
    return folder / "run", table


def test_the_run_holds_its_members_and_a_leaderboard(ensemble_run):
    run, _ = ensemble_run
    info = json.loads((run / "ensemble.json").read_text())
    weights = info["weights"]["colour"]
    # The hint column makes the trees as good as the network here (seeded), so the tests
    # below exercise the members, not the network alone.
    assert plait.load(run).run.ensemble.uses_members()
    assert set(weights) <= {"neural", "lightgbm", "linear"} and sum(weights.values()) == pytest.approx(1)
    files = info["files"]["colour"]
    assert set(files) == {"lightgbm", "linear"}  # every member, weighted or not
    # A tiny table: each member is bagged, five fold models in one file each.
    assert all(len(paths) == 5 and all((run / p).is_file() for p in paths) for paths in files.values())
    board = plait.leaderboard(run)
    assert list(board["candidate"]) == ["neural", "lightgbm", "linear", "ensemble"]
    members = board.set_index("candidate").loc[["lightgbm", "linear"]]
    assert (members["folds"] == 5).all() and members["oof_accuracy"].between(0, 1).all()
    # Every candidate has out-of-fold predictions of every training and validation row
    # (the network's from five fold networks), so the weights are chosen on them all, and
    # the ensemble is never worse there than the best single candidate.
    assert (board["folds"] == 5).all()
    ensemble = board.set_index("candidate").loc["ensemble", "oof_loss"]
    assert ensemble <= board["oof_loss"].iloc[:3].min() + 1e-12
    metrics = json.loads((run / "metrics.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert metrics["leaderboard"] == info["leaderboard"] == summary["leaderboard"]
    page = (run / "report.html").read_text()
    assert 'id="leaderboard"' in page and "lightgbm" in page
    for path in run.rglob("*"):  # no pickle anywhere
        if path.is_file():
            assert path.read_bytes()[:2] not in (b"\x80\x04", b"\x80\x05"), path


def test_predict_evaluate_explain_and_robustness_go_through_the_ensemble(ensemble_run):
    run, table = ensemble_run
    predictor = plait.load(run)
    assert predictor.run.ensemble is not None
    preds = predictor.predict(table)
    probs = preds[[c for c in preds.columns if c.startswith("colour_prob_")]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    metrics = predictor.evaluate(table)
    assert metrics["accuracy"] > 0.8  # the hint alone gives the colour away
    importance = predictor.explain(table, bootstrap=0)
    assert set(importance.inputs["input"]) == {"image", "caption", "tabular"}
    report = predictor.robustness(table, levels=[1.0])
    assert "without tabular" in set(report.missing["condition"])


def test_members_see_a_removed_input_as_missing(ensemble_run):
    """Dropping an input through its presence mask reaches LightGBM and the probe as NaN:
    predictions change without it, and stay finite."""
    run, table = ensemble_run
    predictor = plait.load(run)
    _, dataset = inference.table_dataset(predictor.run, table, with_targets=True)
    clean, _ = inference.outputs(predictor.run, dataset)
    dropped, _ = inference.outputs(predictor.run, dataset, drop={"tabular"})
    assert np.isfinite(dropped["colour"].numpy()).all()
    assert not np.allclose(clean["colour"].numpy(), dropped["colour"].numpy())


def test_leaderboard_command_and_export_refusal(ensemble_run, tmp_path: Path):
    run, _ = ensemble_run
    result = CliRunner().invoke(app, ["leaderboard", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["candidate"] for r in json.loads(result.stdout)][-1] == "ensemble"
    result = CliRunner().invoke(app, ["export", str(run), "--output", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "cannot export: the run's predictions weight the network" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_a_run_of_the_network_alone_has_no_leaderboard(tmp_path: Path):
    table = signal_table(tmp_path, rows=30)
    plait.fit(table, label="colour", config=config(["neural"]), out=tmp_path / "run", verbose=False)
    assert not (tmp_path / "run" / "ensemble.json").exists()
    result = CliRunner().invoke(app, ["leaderboard", str(tmp_path / "run")])
    assert result.exit_code == 2 and "has no leaderboard" in result.stderr


@pytest.mark.parametrize(
    ("candidates", "columns", "match"),
    [
        (
            "neural,xgboost",
            None,
            r"candidates.1: Input should be 'neural', 'lightgbm', 'linear' or 'neural_attention'",
        ),
        (
            "lightgbm",
            ["image", "caption"],
            "reads numeric and category columns and frozen pretrained features",
        ),
    ],
)
def test_bad_candidates_are_one_line(tmp_path: Path, candidates: str, columns: list | None, match: str):
    table = signal_table(tmp_path, rows=30)
    cfg = config(["neural"])
    del cfg["candidates"]
    if columns:
        cfg["inputs"] = [i for i in cfg["inputs"] if i["name"] in columns]
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    args = ["train", str(table), "--label", "colour", "--config", str(tmp_path / "c.yaml")]
    result = CliRunner().invoke(app, [*args, "--candidates", candidates, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert (
        len(result.stderr.strip().splitlines()) == 1 and pd.Series([result.stderr]).str.contains(match).all()
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # five fold networks and bagged members: about 15 s
def test_the_default_preset_weights_the_candidates_on_a_table_with_numbers(tmp_path: Path):
    """No --candidates, no preset: `medium` on a table with a numeric column trains
    LightGBM and the linear probe beside the network, and says so before training."""
    table = signal_table(tmp_path, rows=60)
    cfg = {"encoders": TINY_ENCODERS, "trainer": config(["neural"])["trainer"]}
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    args = ["train", str(table), "--label", "colour", "--config", str(tmp_path / "c.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    schema = " ".join(result.stderr.split())  # the schema and its summary line go to stderr
    assert "preset: medium;" in schema
    assert "the network weighted with lightgbm, linear (plait leaderboard)" in schema
    board = plait.leaderboard(tmp_path / "run")
    assert set(board["candidate"]) == {"neural", "lightgbm", "linear", "ensemble"}


def test_a_text_target_leaves_the_candidates_out_unless_asked(tmp_path: Path):
    table = signal_table(tmp_path, rows=30)
    frame = pd.read_csv(table)
    frame["words"] = "a " + frame["colour"] + " one"
    frame.to_csv(table, index=False)
    cfg = config(["neural", "lightgbm"])
    cfg["outputs"] = [{"name": "words", "type": "text"}]
    with pytest.raises(ConfigError, match="candidate lightgbm cannot learn text targets"):
        plait.fit(table, config=cfg, out=tmp_path / "asked", verbose=False)


def test_serve_answers_with_the_ensemble(ensemble_run):
    """POST /predict gives what predict() gives for the same rows: the ensemble's output."""
    from fastapi.testclient import TestClient

    from plait.serve import ServeOptions, create_app

    run, table = ensemble_run
    predictor = plait.load(run)
    rows = pd.read_csv(table).head(4).drop(columns=["colour", "is_red", "price"])
    expected = predictor.predict(rows, base_dir=table.parent)
    body = {"rows": json.loads(rows.to_json(orient="records"))}
    with TestClient(create_app(predictor, ServeOptions(allow_dir=table.parent))) as client:
        response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    got = pd.DataFrame(response.json()["predictions"])
    probs = [c for c in expected.columns if c.startswith("colour_prob_")]
    assert got["colour"].tolist() == expected["colour"].tolist()
    np.testing.assert_allclose(got[probs].to_numpy(float), expected[probs].to_numpy(float), atol=1e-5)


def test_a_damaged_member_is_named_on_load(ensemble_run, tmp_path: Path):
    run, _ = ensemble_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    member = sorted((copy / "members").glob("lightgbm-*.txt"))[0]
    member.write_text(member.read_text().replace("tree", "bush", 1))  # parses, but is another model
    with pytest.raises(RunFolderError, match=rf"{member.name} is damaged"):
        plait.load(copy)


@pytest.mark.slow  # eight member fits
def test_a_member_is_fitted_once_when_bagging_does_not_fit_the_budget(ensemble_run):
    """With no time for K folds, each member is fitted once on the training rows (and
    scored on the validation rows); with time, it is bagged and scored out of fold."""
    from plait.data.datamodule import make_loader
    from plait.ensemble import fit_ensemble
    from plait.ensemble.bagging import BaggedMember

    run, table = ensemble_run
    loaded = plait.load(run).run
    _, dataset = inference.table_dataset(loaded, table, with_targets=True)
    half = dataset.n_rows // 2
    loaders = {
        "train": [b for i, b in enumerate(make_loader(dataset, 15, shuffle=False)) if i < half // 15],
        "val": [b for i, b in enumerate(make_loader(dataset, 15, shuffle=False)) if i >= half // 15],
    }
    args = (["lightgbm", "linear"], loaded.processors, loaded.targets, loaders, None, 0, None)
    once = fit_ensemble(*args, bag_seconds=0.0)
    assert not any(isinstance(m, BaggedMember) for m in once.members["colour"].values())
    assert all("folds" not in row for row in once.leaderboard)
    bagged = fit_ensemble(*args, bag_seconds=3600.0)
    assert all(len(m.folds) == 5 for m in bagged.members["colour"].values())

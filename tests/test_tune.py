"""`plait tune`: the pruning callback, a search end to end, and resuming a killed one."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import plait
from plait.cli import app
from plait.tune import PruningCallback
from tests.conftest import make_table, tiny_config


def test_the_median_pruner_stops_a_bad_trial_through_the_callback():
    """A deterministic toy objective: trial k's validation loss at epoch e is b_k + 1/(e+1),
    with b = 1.0, 0.5, 9.0. After two full trials, the bad third one is pruned at its
    first reported epoch."""
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    losses = {0: 1.0, 1: 0.5, 2: 9.0}

    def objective(trial):
        callback = PruningCallback(trial)
        for epoch in range(5):
            value = losses[trial.number] + 1 / (epoch + 1)
            trainer = SimpleNamespace(
                callback_metrics={"val_loss": value}, current_epoch=epoch, sanity_checking=False
            )
            callback.on_validation_end(trainer, None)
        return value

    study.optimize(objective, n_trials=3)
    states = [t.state for t in study.trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert states[2] == optuna.trial.TrialState.PRUNED
    assert max(study.trials[2].intermediate_values) == 0  # stopped at its first epoch


def tiny(folder: Path) -> tuple[Path, Path]:
    make_table(folder, rows=48).to_csv(folder / "t.csv", index=False)
    cfg = tiny_config()
    cfg["trainer"]["epochs"] = 2
    (folder / "c.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "t.csv", folder / "c.yaml"


def tune_args(table: Path, config: Path, out: Path) -> list[str]:
    """`plait tune`'s arguments for the tiny table: its label, config and output folder."""
    return [str(table), "--label", "colour", "--config", str(config), "--out", str(out)]


@pytest.mark.slow  # three trainings
def test_a_search_writes_the_best_run_with_its_trials(tmp_path: Path):
    table, config = tiny(tmp_path)
    out = tmp_path / "best"
    args = ["tune", *tune_args(table, config, out), "--trials", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2]
    assert {"params_learning_rate", "params_fusion", "state", "seconds"} <= set(trials.columns)
    assert (out / "search.png").stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert 'id="search"' in page and "params_learning_rate" in page
    best = trials[trials["state"] == "complete"]["value"].min()
    log = pd.read_csv(out / "log.csv")
    assert log["val_loss"].min() == pytest.approx(best)  # the best trial's own run folder
    assert plait.load(out).predict(table)["colour"].notna().all()
    assert not (tmp_path / ".best.work").exists()  # the study's folder is gone once copied


def test_bad_requests_are_one_line(tmp_path: Path):
    table, config = tiny(tmp_path)
    base = ["tune", str(table), "--label", "colour", "--config", str(config), "--out", str(tmp_path / "o")]
    for extra, message in (
        ([], "needs --trials N or --time-limit"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--trials", "1", "--resume"], "no search to resume"),
    ):
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and message in result.stderr, result.output


@pytest.mark.slow  # two trials and the final run with its candidates
@pytest.mark.parametrize("preset", ["best", "medium"])
def test_a_preset_with_candidates_trains_the_best_settings_again_with_the_ensemble(
    tmp_path: Path, preset: str
):
    """Trials train the network alone (the sampler judges the network); where the preset
    trains candidates (best; medium on this table, which has numeric and category
    columns) the best trial's settings are trained once more with LightGBM and the
    linear probe, and that run, with its leaderboard, is --out."""
    table, config = tiny(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    del cfg["candidates"]  # the preset's choice
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "best"
    args = ["tune", *tune_args(table, config, out), "--trials", "2", "--preset", preset]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and "params_candidates" not in trials.columns
    assert "params_feature_dropout" in trials.columns
    board = plait.leaderboard(out)
    best = trials.loc[trials["value"].idxmin()]
    # best also trains the network again with the attention fusion, unless the best
    # trial's network already has it.
    second = {"neural_attention"} if preset == "best" and best["params_fusion"] != "attention" else set()
    assert set(board["candidate"]) == {"neural", "lightgbm", "linear", "ensemble"} | second
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["trainer"]["learning_rate"] == pytest.approx(best["params_learning_rate"])


@pytest.mark.slow
def test_a_killed_search_resumes_the_same_study(tmp_path: Path):
    table, config = tiny(tmp_path)
    out = tmp_path / "best"
    command = [sys.executable, "-m", "plait.cli", "tune", *tune_args(table, config, out)]
    study = tmp_path / ".best.work" / "tune" / "study.db"

    def finished() -> int:
        if not study.exists():
            return 0
        try:  # the search writes the file meanwhile: wait for its lock, or read again later
            with sqlite3.connect(study, timeout=30) as db:
                query = "select count(*) from trials where state in ('COMPLETE', 'PRUNED')"
                return db.execute(query).fetchone()[0]
        except sqlite3.OperationalError:  # locked past the timeout, or its tables not made yet
            return 0

    proc = subprocess.Popen(
        [*command, "--trials", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while finished() < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished()
    assert before >= 2 and not out.exists()
    refused = subprocess.run([*command, "--trials", "3"], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "was interrupted; continue it with --resume" in refused.stderr
    done = subprocess.run(
        [*command, "--trials", str(before + 1), "--resume"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) >= before + 1 and list(trials["number"]) == list(
        range(len(trials))
    )  # one study, continued

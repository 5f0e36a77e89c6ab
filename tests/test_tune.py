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
import plait.tune as tune
from plait.cli import app
from plait.config import PlaitConfig, apply_overrides
from plait.data.schema import resolve_config
from plait.data.table import read_table
from plait.tune import MAX_FINETUNE_DEPTH, WARMUP_EPOCHS, PruningCallback, affordable_depth, suggest
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


TRIAL = {
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "batch_size": 32,
    "fusion": "gated",
    "width": 256,
    "feature_dropout": 0.3,
    "finetune_depth": 1,
}


def test_a_trial_sets_width_and_fine_tuning_depth_where_they_apply(tmp_path: Path):
    """With the preset's pretrained encoders, a trial sets their dropout, projection width
    and fine-tuned last blocks (image and text; the video backbone stays frozen) and the
    head's hidden width; from scratch (fast), only the head's width."""
    frame = make_table(tmp_path, rows=12)
    base = PlaitConfig()
    resolved = resolve_config(frame, base, ["colour"])
    cfg = apply_overrides(base, **suggest(optuna.trial.FixedTrial(TRIAL), base, resolved))
    tuned = {"dropout": 0.3, "out_dim": 256, "finetune": "last_n", "last_n": 1}
    assert cfg.encoders["image"].params == tuned and cfg.encoders["text"].params == tuned
    assert "finetune" not in cfg.encoders["video"].params
    assert [o.head.params["hidden_dim"] for o in cfg.outputs] == [256]
    assert (cfg.trainer.learning_rate, cfg.fusion.name, cfg.candidates) == (1e-3, "gated", ["neural"])
    trial = resolve_config(frame, cfg, ["colour"])  # what the trial's run trains
    image = next(i for i in trial.inputs if i.type == "image")
    assert image.encoder.name == "efficientnet_lite0" and image.encoder.params["last_n"] == 1
    assert trial.outputs[0].type == resolved.outputs[0].type

    frozen = suggest(optuna.trial.FixedTrial({**TRIAL, "finetune_depth": 0}), base, resolved)
    assert "finetune" not in frozen["encoders"]["image"].params  # 0: frozen, features cached
    own = PlaitConfig(encoders={"text": {"name": "gru"}})  # the config's own encoder wins
    flags = suggest(optuna.trial.FixedTrial(TRIAL), own, resolve_config(frame, own, ["colour"]))
    assert flags["encoders"]["text"].name == "gru" and not flags["encoders"]["text"].params

    fast = PlaitConfig(preset="fast")
    flags = suggest(optuna.trial.FixedTrial(TRIAL), fast, resolve_config(frame, fast, ["colour"]))
    assert "encoders" not in flags and flags["outputs"][0].head.params["hidden_dim"] == 256


def test_fine_tuning_is_searched_only_where_a_trial_can_afford_it(tmp_path: Path, monkeypatch):
    """A fine-tuning trial must reach the pruner's first judgement (WARMUP_EPOCHS passes)
    within a trial's share; the probe's measured seconds per row decide."""
    frame = make_table(tmp_path, rows=12)
    base = PlaitConfig()
    monkeypatch.setattr(tune, "finetune_row_seconds", lambda *args: 0.5)
    rows = 100  # 5 epochs × 100 rows × 0.5 s = 250 s
    assert affordable_depth(None, "colour", base, rows, cap=300.0) == (MAX_FINETUNE_DEPTH, "")
    depth, note = affordable_depth(None, "colour", base, rows, cap=200.0)
    assert depth == 0 and note == (
        f"fine-tuning is not searched: {WARMUP_EPOCHS} epochs of it would take about 4m10s on this "
        "machine, more than a trial's share (3m20s)"
    )
    assert affordable_depth(None, "colour", base, rows, cap=None) == (
        MAX_FINETUNE_DEPTH,
        "",
    )  # --trials alone
    # With depth 0 the trial does not draw it: every pretrained backbone stays frozen.
    resolved = resolve_config(frame, base, ["colour"])
    trial = optuna.create_study().ask()
    flags = suggest(trial, base, resolved, max_depth=0)
    assert "finetune_depth" not in trial.params and "finetune" not in flags["encoders"]["image"].params


def test_the_probe_times_a_fine_tuning_step_on_the_table(tmp_path: Path):
    make_table(tmp_path, rows=12).to_csv(tmp_path / "t.csv", index=False)
    seconds = tune.finetune_row_seconds(read_table(tmp_path / "t.csv"), "colour", PlaitConfig(), 1)
    assert 0 < seconds < 60  # EfficientNet-Lite0 and MiniLM, forward and backward, per row


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
    # The first trial is the config's own settings (learning rate 0.01, the concat fusion).
    first = trials.iloc[0]
    assert (first["params_learning_rate"], first["params_fusion"]) == (0.01, "concat")
    assert first["params_width"] == 128
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
    network, searched = trials[trials["stage"] == "network"], trials[trials["stage"] == "lightgbm"]
    assert len(network) == 2 and "params_candidates" not in trials.columns
    # The head's width is searched; this table's columns name their own encoders, so
    # there is no pretrained feature dropout or fine-tuning depth to search.
    assert "params_width" in trials.columns and "params_feature_dropout" not in trials.columns
    # LightGBM's settings were searched in the final run, the config's own first.
    assert len(searched) >= 1 and searched["params_lightgbm_num_leaves"].iloc[0] == 31
    assert searched["target"].eq("colour").all()
    board = plait.leaderboard(out)
    assert board.set_index("candidate").loc["lightgbm", "search_trials"] == len(searched)
    best = network.loc[network["value"].idxmin()]
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

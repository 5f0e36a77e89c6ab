"""Every number given on the command line is validated before any work starts: a bad
one is one line on stderr, exit code 2, and nothing is written (issue 23, item 4)."""

from pathlib import Path

import pytest
import yaml

from plait.config import PlaitConfig, apply_overrides, check_seed, parse_config
from plait.errors import ConfigError
from plait.train import fit
from tests.conftest import make_table, tiny_config, tiny_run
from tests.test_cli import plait, plait_many


@pytest.mark.slow
def test_epochs_below_one_exit_2_before_anything_is_written(tmp_path: Path):
    data = tmp_path / "data"
    make_table(data, rows=12).to_csv(data / "t.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    before = sorted(p.name for p in tmp_path.iterdir())
    for epochs in ("0", "-1"):
        out = tmp_path / "run"
        result = plait(
            "train", data / "t.csv", "-l", "colour", "-c", config, "--epochs", epochs, "--out", out
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"error: command line: epochs: Input should be greater than or equal to 1, got {epochs}\n"
        )
        assert result.stdout == ""
        # No run folder, no work folder (checkpoints), nothing else beside them.
        assert not out.exists() and not (tmp_path / ".run.work").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def cases(run: Path, table: Path) -> dict[str, tuple[list, str]]:
    """Command line → the start of its one-line error."""
    train = ["train", table, "-l", "colour"]
    return {
        "train epochs -3": ([*train, "--epochs", "-3"], "epochs: Input should be greater than or equal to 1"),
        "train seed": ([*train, "--seed", "-1"], "seed: Input should be greater than or equal to 0, got -1"),
        "train huge seed": ([*train, "--seed", str(2**40)], "seed: Input should be less than or equal to"),
        "train num-nodes": ([*train, "--num-nodes", "0"], "num_nodes: Input should be greater than"),
        "train checkpoint-every": ([*train, "--checkpoint-every", "0"], "checkpoint_every_n_steps"),
        "train devices": ([*train, "--devices", "0"], "devices must be a count ≥ 1"),
        "cv epochs": (["cv", table, "-l", "colour", "--epochs", "0"], "epochs: Input should be greater"),
        "cv seed": (["cv", table, "-l", "colour", "--seed", "-5"], "seed: Input should be greater"),
        "cv folds": (["cv", table, "-l", "colour", "--folds", "1"], "--folds must be at least 2, got 1"),
        "benchmark epochs": (["benchmark", table, "-l", "colour", "--epochs", "0"], "epochs: Input should"),
        "benchmark seeds": (
            ["benchmark", table, "-l", "colour", "--seeds", "0"],
            "--seeds must be at least 1",
        ),
        "demo epochs": (["demo", "--epochs", "0"], "epochs: Input should be greater than or equal to 1"),
        "demo seed": (["demo", "--seed", "-1"], "seed: Input should be greater than or equal to 0"),
        "robustness seed": (["evaluate", run, table, "--robustness", "--seed", "-1"], "seed: Input should"),
        "robustness levels": (["evaluate", run, table, "--robustness", "--levels", "nan"], "noise levels"),
        "explain bootstrap": (["explain", run, table, "--bootstrap", "-1"], "--bootstrap must be 0 or more"),
        "explain seed": (["explain", run, table, "--seed", "-1"], "seed: Input should be greater"),
        "explain rows": (["explain", run, table, "--rows", "0"], "--rows must be row numbers from 1 to"),
        "search top": (["search", run, "--index", table, "--query", "red", "--top", "0"], "--top must be at"),
        "serve port": (["serve", run, "--port", "70000"], "--port must be in 0..65535, got 70000"),
        "serve workers": (["serve", run, "--workers", "0"], "--workers must be an integer ≥ 1, got 0"),
        "serve threads": (["serve", run, "--threads", "0"], "--threads must be ≥ 1, got 0"),
        "serve max-batch": (["serve", run, "--max-batch", "0"], "--max-batch must be an integer ≥ 1"),
        "serve max-wait-ms": (["serve", run, "--max-wait-ms", "-1"], "--max-wait-ms must be ≥ 0"),
        "serve infinite wait": (
            ["serve", run, "--max-wait-ms", "inf"],
            "--max-wait-ms must be ≥ 0 and finite",
        ),
        "serve max-upload-mb": (["serve", run, "--max-upload-mb", "0"], "--max-upload-mb must be > 0"),
        "serve no upload limit": (
            ["serve", run, "--max-upload-mb", "inf"],
            "--max-upload-mb must be > 0 and",
        ),
    }


@pytest.mark.slow
def test_every_numeric_option_is_checked_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run, table = tiny_run(tmp_path / "made")
    work = tmp_path / "cwd"  # default output folders (runs/...) would land here
    work.mkdir()
    monkeypatch.chdir(work)
    checked = cases(run, table)
    run_files = sorted(p.name for p in run.iterdir())
    for (name, (_, message)), result in zip(
        checked.items(), plait_many(*(a for a, _ in checked.values())), strict=True
    ):
        assert result.returncode == 2, (name, result.stderr[-800:])
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr[-800:])
        assert message in lines[0], (name, lines[0])
    assert list(work.iterdir()) == [], "a rejected command wrote something"
    assert sorted(p.name for p in run.iterdir()) == run_files


def test_python_api_validates_like_the_config(tmp_path: Path):
    make_table(tmp_path, rows=12).to_csv(tmp_path / "t.csv", index=False)
    for epochs in (0, -1):
        with pytest.raises(ConfigError, match="epochs: Input should be greater than or equal to 1"):
            fit(tmp_path / "t.csv", label="colour", config=tiny_config(), out=tmp_path / "r", epochs=epochs)
    with pytest.raises(ConfigError, match="seed"):
        fit(tmp_path / "t.csv", label="colour", config=tiny_config(), out=tmp_path / "r", seed=-1)
    assert not (tmp_path / "r").exists() and not (tmp_path / ".r.work").exists()
    with pytest.raises(ConfigError, match="seed"):
        apply_overrides(PlaitConfig(), seed=-1)
    with pytest.raises(ConfigError, match="seed: Input should be greater than or equal to 0"):
        parse_config({"seed": -1})  # a config file's seed: the same rule
    with pytest.raises(ConfigError, match="devices"):
        apply_overrides(PlaitConfig(), devices=0)
    assert apply_overrides(PlaitConfig(), devices=-1).trainer.devices == -1  # every device, as Lightning
    assert check_seed(2**32 - 1) == 2**32 - 1

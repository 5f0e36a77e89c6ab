"""The `plait` command on tiny tables: in this process (typer's CliRunner) wherever the
process itself is not what is tested, else as a real subprocess."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from plait.cli import app
from tests.conftest import tiny_config

PLAIT = [sys.executable, "-m", "plait.cli"]


def plait(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command, `python -m plait.cli ARGS`, in a fresh process."""
    return subprocess.run([*PLAIT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def plait_in(*args: str | Path) -> subprocess.CompletedProcess:
    """`plait ARGS` run in this process: its exit code, and what it wrote to sys.stdout and
    sys.stderr, as a CompletedProcess. Not what reaches the file descriptors (a logging
    handler holding another stream, C code): test that with `plait` or `plait_many`. A bug
    (any exception but a PlaitError) is raised here, not turned into an exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as in plait_many: every warning is shown each time
        result = CliRunner().invoke(app, [str(a) for a in args], prog_name="plait", catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def plait_in_each(*commands: list) -> list[subprocess.CompletedProcess]:
    return [plait_in(*args) for args in commands]


# Runs several `plait` command lines one after another in one fresh process, each with
# its own stdout and stderr captured at the file-descriptor level (print, rich,
# warnings, logging handlers: whatever writes to fd 1 or 2), so a series of commands
# pays the ~10 s import of torch and Lightning once. Every warning is shown each time.
_MANY = """
import json, os, sys, tempfile, warnings
from plait.cli import app
warnings.simplefilter("always")
results, saved = [], {fd: os.dup(fd) for fd in (1, 2)}
for args in json.load(sys.stdin):
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    sys.stdout.flush(), sys.stderr.flush()
    for fd, f in files.items():
        os.dup2(f.fileno(), fd)
    try:
        app(args, prog_name="plait")
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd in files:
            os.dup2(saved[fd], fd)
    texts = []
    for f in files.values():
        f.seek(0)
        texts.append(f.read().decode())
        f.close()
    results.append([code, *texts])
print(json.dumps(results))
"""


def plait_many(*commands: list, cwd: Path | None = None) -> list[subprocess.CompletedProcess]:
    """Each command line's exit code, stdout and stderr, as `plait` run on its own gives
    them; the commands run in order, so one may read what an earlier one wrote."""
    lines = [[str(a) for a in args] for args in commands]
    done = subprocess.run(
        [sys.executable, "-c", _MANY],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.splitlines()[-1])
    return [
        subprocess.CompletedProcess(a, code, out, err)
        for a, (code, out, err) in zip(lines, results, strict=True)
    ]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    return path


@pytest.mark.slow
def test_train_evaluate_predict(table_csv: Path, config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    result = plait(
        "train",
        table_csv,
        "--label",
        "colour",
        "--config",
        config_file,
        "--out",
        run,
        "--epochs",
        "2",
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert "image" in result.stderr and "caption" in result.stderr  # the inferred-types table
    assert "validation set" in result.stdout and f"run folder: {run}" in result.stdout
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 3

    result = plait("evaluate", run, table_csv, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert set(metrics) == {"accuracy", "macro_f1", "balanced_accuracy"}

    out = tmp_path / "preds" / "p.csv"
    result = plait("predict", run, table_csv, "--output", out)
    assert result.returncode == 0, result.stderr
    preds = pd.read_csv(out)
    assert len(preds) == 60 and list(preds["id"][:3]) == ["row0", "row1", "row2"]
    assert "colour_prob_red" in preds


def test_type_overrides_and_skip_bad_files(table_dir: Path, config_file: Path, tmp_path: Path):
    frame = pd.read_csv(table_dir / "table.csv")
    frame.loc[3, "image"] = "images/missing.png"
    frame.to_csv(table_dir / "bad.csv", index=False)
    result = plait_in(
        "train",
        table_dir / "bad.csv",
        "-l",
        "colour",
        "-c",
        config_file,
        "--epochs",
        "1",
        "--out",
        tmp_path / "r",
        "--on-bad-row",
        "missing",
        "--type",
        "size=category",
        "--fusion",
        "gated",
    )
    assert result.returncode == 0, result.stderr
    assert "1 row(s) with an unreadable file or a bad number kept" in result.stderr
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert {i["name"]: i["type"] for i in config["inputs"]}["size"] == "category"
    assert config["fusion"]["name"] == "gated"


def bad_input_cases(table_dir: Path, tmp_path: Path) -> dict[str, tuple[list, str]]:
    frame = pd.read_csv(table_dir / "table.csv")
    frame.assign(colour=frame["colour"].where(frame.index % 10 != 0)).to_csv(
        table_dir / "nan.csv", index=False
    )
    frame.assign(image=frame["image"].replace("images/4.png", "images/gone.png")).to_csv(
        table_dir / "gone.csv", index=False
    )
    (table_dir / "images" / "fake.png").write_text("not an image")
    frame.assign(image=frame["image"].replace("images/4.png", "images/fake.png")).to_csv(
        table_dir / "fake.csv", index=False
    )
    (table_dir / "empty.csv").write_text("image,caption,colour\n")
    (tmp_path / "unknown.yaml").write_text("inputs:\n  - {name: caption, encoder: gruu}\n")
    csv = table_dir / "table.csv"
    return {
        "missing table": (["train", table_dir / "nope.csv", "-l", "colour"], "table file not found"),
        "unknown label": (
            ["train", csv, "-l", "color"],
            "unknown label column 'color'. Did you mean 'colour'? Columns: id, image",
        ),
        "nan label": (
            ["train", table_dir / "nan.csv", "-l", "colour"],
            "label column 'colour' is empty in 6 of 60 rows",
        ),
        "missing image": (
            ["train", table_dir / "gone.csv", "-l", "colour"],
            "column 'image', row 5: image file not found:",
        ),
        "not an image": (
            ["train", table_dir / "fake.csv", "-l", "colour"],
            "column 'image', row 5: not a readable image",
        ),
        "empty table": (["train", table_dir / "empty.csv", "-l", "colour"], "is empty (no rows)"),
        "unknown encoder": (
            ["train", csv, "-l", "colour", "-c", tmp_path / "unknown.yaml"],
            "unknown encoder 'gruu'. Did you mean 'gru'? "
            "Valid encoders: audio_cnn, audio_cnn1d, audio_gru, bag, cnn",
        ),
        "wrong column type": (
            ["train", csv, "-l", "colour", "--type", "caption=numeric"],
            "column 'caption', row 1: expected a number, got 'a red square number 0'",
        ),
        "bad type": (["train", csv, "-l", "colour", "--type", "caption=hologram"], "unknown type 'hologram'"),
        "missing run": (["evaluate", tmp_path / "norun", csv], "run folder not found"),
    }


@pytest.mark.slow
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(table_dir: Path, tmp_path: Path):
    cases = bad_input_cases(table_dir, tmp_path)
    outs = [tmp_path / "runs" / name.replace(" ", "_") for name in cases]
    commands = [
        [*a, "--out", o] if a[0] == "train" else a for (a, _), o in zip(cases.values(), outs, strict=True)
    ]
    # One case through `python -m plait.cli` itself; all of them in one process.
    single, many = plait(*commands[0]), plait_many(*commands)
    assert (single.returncode, single.stdout, single.stderr) == (
        many[0].returncode,
        many[0].stdout,
        many[0].stderr,
    )
    for (name, (_, message)), out, result in zip(cases.items(), outs, many, strict=True):
        stderr = result.stderr
        assert result.returncode == 2, (name, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, stderr)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in stderr
        # Validation happens before anything is written: not even the parent folder.
        assert not out.exists() and not (tmp_path / "runs").exists(), name


def commands(group: TyperGroup | None = None, prefix: tuple[str, ...] = ()):
    """Every command line the app registers (`cache clear` too), with its command."""
    for name, command in (group or typer.main.get_group(app)).commands.items():
        if isinstance(command, TyperGroup):
            yield from commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


def test_help_lists_commands():
    result = plait("--help")  # `python -m plait.cli` itself
    assert result.returncode == 0, result.stderr
    for line, _ in commands():
        assert f" {line.split()[0]} " in result.stdout, line


@pytest.mark.parametrize("line", [line for line, _ in commands()])
def test_every_command_has_help(line: str):
    command = dict(commands())[line]
    result = plait_in(*line.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: plait {line} " in result.stdout
    assert " ".join(command.help.split()[:3]) in result.stdout  # its docstring
    for param in command.params:
        if isinstance(param, TyperOption):
            names = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
        else:
            names = [param.name]
        for name in names:
            assert name in result.stdout, (line, name)


def test_data_root_is_an_option_of_plait_itself(tmp_path: Path):
    from plait.data import paths

    result = plait_in("--help")
    assert "--data-root" in result.stdout
    missing = tmp_path / "nope"
    result = plait_in("--data-root", missing, "report", tmp_path)
    assert result.returncode == 2 and result.stderr == f"error: --data-root {missing} is not a folder\n"
    assert paths.data_root() is None


def test_on_bad_row_skip_leaves_out_and_counts(table_dir: Path, config_file: Path, tmp_path: Path):
    frame = pd.read_csv(table_dir / "table.csv").astype({"size": object})
    frame.loc[3, "image"] = "images/missing.png"
    frame.loc[10, "size"] = "1,200"  # a stray string in a number column
    frame.to_csv(table_dir / "bad.csv", index=False)
    result = plait_in("train", table_dir / "bad.csv", "-l", "colour", "-c", config_file, "--epochs", "1")
    assert result.returncode == 2
    assert "column 'image', row 4: image file not found" in result.stderr
    run = tmp_path / "skip"
    result = plait_in(
        "train",
        table_dir / "bad.csv",
        "-l",
        "colour",
        "-c",
        config_file,
        "--epochs",
        "1",
        "--out",
        run,
        "--on-bad-row",
        "skip",
    )
    assert result.returncode == 0, result.stderr
    assert "2 row(s) with an unreadable file or a bad number skipped" in result.stderr
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    assert rows["train"] + rows["val"] == 58


@pytest.mark.slow
def test_benchmark_command(table_csv: Path, config_file: Path, tmp_path: Path):
    result = plait_in(
        "benchmark",
        table_csv,
        "-l",
        "colour",
        "--fusions",
        "concat,film",
        "-c",
        config_file,
        "--epochs",
        "1",
        "--no-unimodal",
        "--out",
        tmp_path / "b",
    )
    assert result.returncode == 0, result.stderr
    assert "concat" in result.stdout and "film" in result.stdout and "accuracy without image" in result.stdout
    assert (tmp_path / "b" / "benchmark.png").exists()


@pytest.mark.slow
def test_evaluate_robustness(table_csv: Path, config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert plait_in("train", table_csv, "-l", "colour", "-c", config_file, "--out", run).returncode == 0
    as_json, as_table, bad_levels = plait_in_each(
        ["evaluate", run, table_csv, "--robustness", "--levels", "0.5", "--json"],
        ["evaluate", run, table_csv, "--robustness", "--levels", "0.5"],
        ["evaluate", run, table_csv, "--robustness", "--levels", "half"],
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["metric"] == "accuracy" and len(report["missing"]) == 6
    assert {row["level"] for row in report["noise"]} == {0.0, 0.5}
    assert "with noisy inputs" in as_table.stdout and "needs --baseline" in as_table.stdout
    assert bad_levels.returncode == 2 and bad_levels.stderr.strip() == (
        "error: --levels must be numbers separated by commas, got 'half'"
    )


def test_text_target_generates_through_the_cli(tmp_path: Path):
    from tests.conftest import make_table

    frame = make_table(tmp_path, rows=45, missing=False)
    frame["words"] = [f"the {c} one" for c in frame["colour"]]
    frame[["id", "image", "words"]].to_csv(tmp_path / "t.csv", index=False)
    config = {
        "inputs": [
            {"name": "image", "type": "image", "encoder": {"name": "cnn", "channels": [4, 8], "out_dim": 8}}
        ],
        "outputs": [{"name": "words", "type": "text", "head": {"name": "decoder", "dim": 32, "depth": 1}}],
        "trainer": {"epochs": 15, "batch_size": 8, "learning_rate": 0.005, "progress": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert plait_in("train", tmp_path / "t.csv", "-c", tmp_path / "c.yaml", "--out", run).returncode == 0
    out = tmp_path / "p.csv"
    evaluated, predicted = plait_in_each(
        ["evaluate", run, tmp_path / "t.csv", "--json"], ["predict", run, tmp_path / "t.csv", "--output", out]
    )
    metrics = json.loads(evaluated.stdout)
    assert set(metrics) == {"bleu", "chrf", "exact_match", "wer"} and metrics["exact_match"] > 0.9
    assert predicted.returncode == 0, predicted.stderr
    preds = pd.read_csv(out)
    assert (preds["words"] == frame["words"]).mean() > 0.9


def test_category_and_multilabel_targets_train_and_reload(table_dir: Path, tmp_path: Path):
    from plait.predictor import Predictor
    from tests.conftest import add_tags, make_table

    add_tags(make_table(table_dir)).to_csv(table_dir / "tags.csv", index=False)
    head = {"name": "multilabel", "pos_weight": "balanced"}
    config = tiny_config(outputs=[{"name": "tags", "head": head, "loss_weight": 0.5}])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    table = table_dir / "tags.csv"
    args = ["--label", "colour", "--label", "tags", "--type", "tags=multilabel", "-c", tmp_path / "c.yaml"]
    result = plait_in("train", table, *args, "--out", run, "--epochs", "2")
    assert result.returncode == 0, result.stderr

    labels = ["cool", "natural", "north"]
    saved = json.loads((run / "processors.json").read_text())["targets"]["tags"]
    assert saved["kind"] == "multilabel" and saved["fitted"]["classes_"] == labels
    thresholds = json.loads((run / "metrics.json").read_text())["thresholds"]
    assert thresholds == {"tags": dict(zip(labels, saved["fitted"]["thresholds_"], strict=True))}

    out = tmp_path / "p.parquet"
    evaluated, predicted = plait_in_each(
        ["evaluate", run, table, "--json"], ["predict", run, table, "--output", out]
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    expected = {"colour/accuracy", "colour/macro_f1", "colour/balanced_accuracy"} | {
        f"tags/{m}" for m in ("micro_f1", "macro_f1", "mean_ap", "subset_accuracy")
    }
    assert set(metrics) == expected
    assert predicted.returncode == 0, predicted.stderr
    from_cli = pd.read_parquet(out)
    loaded = Predictor.load(run)
    pd.testing.assert_frame_equal(loaded.predict(table), from_cli)
    assert loaded.evaluate(table) == pytest.approx(metrics)
    assert {f"tags_prob_{name}" for name in labels} <= set(from_cli.columns)
    called = [set(filter(None, cell.split("|"))) for cell in from_cli["tags"]]
    assert all(c <= set(labels) for c in called)


def test_binary_threshold_is_tuned_for_the_metric_or_fixed(table_csv: Path, tmp_path: Path):
    config = tiny_config(outputs=[{"name": "is_red", "threshold": 0.3}])
    (tmp_path / "fixed.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    tuned, fixed = tmp_path / "tuned", tmp_path / "fixed"
    for result in plait_in_each(
        [
            "train",
            table_csv,
            "-l",
            "is_red",
            "-c",
            tmp_path / "tiny.yaml",
            "--metric",
            "macro_f1",
            "-o",
            tuned,
        ],
        ["train", table_csv, "-c", tmp_path / "fixed.yaml", "-o", fixed],
    ):
        assert result.returncode == 0, result.stderr
    for run in (tuned, fixed):
        saved = json.loads((run / "processors.json").read_text())["targets"]["is_red"]["fitted"]["threshold_"]
        assert json.loads((run / "metrics.json").read_text())["thresholds"] == {"is_red": {"yes": saved}}
        out = tmp_path / f"{run.name}.csv"
        assert plait_in("predict", run, table_csv, "-o", out).returncode == 0
        preds = pd.read_csv(out)
        assert (preds["is_red"] == preds["is_red_prob_yes"].ge(saved).map({True: "yes", False: "no"})).all()
    assert saved == 0.3  # the config's own, not tuned
    assert yaml.safe_load((tuned / "config.yaml").read_text())["metric"] == "macro_f1"


def test_metric_and_threshold_mistakes_exit_2(table_csv: Path, tmp_path: Path):
    (tmp_path / "price.yaml").write_text(
        yaml.safe_dump(tiny_config(outputs=[{"name": "price", "threshold": 0.4}]))
    )
    (tmp_path / "one.yaml").write_text(
        yaml.safe_dump(tiny_config(outputs=[{"name": "is_red", "threshold": 1}]))
    )
    cases = {
        "metric auc": (["-l", "is_red", "--metric", "auc"], "metric: Input should be 'auto', 'accuracy'"),
        "numeric threshold": (
            ["-c", tmp_path / "price.yaml"],
            "output 'price': threshold: is for binary targets",
        ),
        "threshold 1": (["-c", tmp_path / "one.yaml"], "threshold"),
    }
    for name, (args, message) in cases.items():
        result = plait_in("train", table_csv, *args, "-o", tmp_path / "run")
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.stderr)
        assert not (tmp_path / "run").exists()


def test_train_speed_flags_and_cache_clear(table_csv: Path, config_file: Path, tmp_path: Path):
    cache = Path(os.environ["PLAIT_CACHE_DIR"]) / "decoded"  # the suite's private cache
    common = ("--label", "colour", "--config", config_file, "--epochs", "1")
    result = plait_in("train", table_csv, *common, "--out", tmp_path / "a", "--no-cache", "--channels-last")
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["cache"] is False and saved["trainer"]["channels_last"] is True
    assert saved["trainer"]["compile"] is False
    assert not cache.exists()

    result = plait_in("train", table_csv, *common, "--out", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["cache"] is True
    stored = len(list(cache.glob("*.safetensors")))
    assert stored == 4  # image and caption, training and validation rows

    result = plait_in("cache", "clear")
    assert result.returncode == 0, result.stderr
    assert f"removed {stored} file(s)" in result.stdout and not cache.exists()

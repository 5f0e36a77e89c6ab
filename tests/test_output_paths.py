"""No command deletes or rewrites a path it was not asked to write (plait.output_paths).

The unit tests drive plait.output_paths and runfolder.staging directly; the CLI tests
run the real commands on a tiny table; the property test throws every command at
every kind of path (the table, its images, a user's folder or file, the run folder,
`.`, a symlink, a new path) with and without --overwrite, and checks that every file
outside the named output is still there, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from plait.cli import app
from plait.errors import PlaitError
from plait.output_paths import Inputs, check_output_file, check_output_folder, table_inputs
from plait.runfolder import staging
from tests.conftest import make_table, tiny_config
from tests.test_cli import plait_many


def snapshot(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file (and link target) under `root`."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# -- unit ----------------------------------------------------------------------------
def test_a_folder_plait_did_not_write_is_never_replaced(tmp_path: Path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(PlaitError, match="exists and is not a Plait run; choose another --out"):
        check_output_folder(precious, overwrite=True)
    with pytest.raises(PlaitError, match="already exists"):
        check_output_folder(precious, overwrite=False)
    assert (precious / "thesis.txt").read_text() == "years of work"


def test_staging_replaces_a_run_folder_only(tmp_path: Path):
    run = tmp_path / "run"
    with staging(run) as tmp:
        (tmp / "plait.json").write_text("{}")
    with staging(run, overwrite=True) as tmp:
        (tmp / "plait.json").write_text('{"new": 1}')
    assert (run / "plait.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_folder_replaced_by_user_files_while_training_is_kept(tmp_path: Path):
    run = tmp_path / "run"
    with pytest.raises(PlaitError, match="is not a Plait run"), staging(run, overwrite=True) as tmp:
        (tmp / "plait.json").write_text("{}")
        run.mkdir()  # the user made a folder there meanwhile
        (run / "notes.txt").write_text("mine")
    assert (run / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_output_folder_holding_the_data_is_refused(tmp_path: Path):
    frame = make_table(tmp_path / "data", rows=6)
    table = tmp_path / "data" / "t.csv"
    frame.to_csv(table, index=False)
    inputs = table_inputs(table, frame, table.parent, ["image"])
    for out in (tmp_path / "data", tmp_path / "data" / "images", tmp_path):
        with pytest.raises(PlaitError, match="which this command reads"):
            check_output_folder(out, overwrite=True, inputs=inputs)
    check_output_folder(tmp_path / "data" / "runs" / "x", overwrite=False, inputs=inputs)  # beside: fine


def test_the_current_folder_is_refused_before_any_work(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (".", "./", "sub/..", str(tmp_path.parent)):
        with pytest.raises(PlaitError, match="current folder"):
            check_output_folder(Path(out), overwrite=True)


def test_an_output_file_is_never_an_input_however_spelled(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    (tmp_path / "link.csv").symlink_to(table)
    inputs = Inputs().add_file("t.csv", "the input table")
    for output in ("t.csv", "./t.csv", "sub/../t.csv", str(table), "link.csv"):
        with pytest.raises(PlaitError, match="is the input table"):
            check_output_file(Path(output), overwrite=True, inputs=inputs)
    with pytest.raises(PlaitError, match="pass --overwrite"):
        check_output_file(tmp_path / "sub" / ".." / "link.csv", overwrite=False)
    with pytest.raises(PlaitError, match="is a folder"):
        check_output_file(tmp_path / "sub", overwrite=True)
    check_output_file(tmp_path / "new.csv", overwrite=False, inputs=inputs)


# -- CLI -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/t.csv with its images, a trained run, a user's folder and file."""
    from plait.train import fit

    root = tmp_path_factory.mktemp("world")
    make_table(root / "data", rows=16).to_csv(root / "data" / "t.csv", index=False)
    config = tiny_config()
    config["trainer"].update(epochs=1)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    (root / "precious").mkdir()
    (root / "precious" / "thesis.txt").write_text("years of work")
    (root / "notes.txt").write_text("a regular file")
    (root / "data" / "link.csv").symlink_to("t.csv")
    fit(root / "data" / "t.csv", label="colour", config=config, out=root / "run", verbose=False)
    return root


def copy_world(world: Path, dest: Path) -> Path:
    shutil.copytree(world, dest, symlinks=True)
    return dest


TRAIN = ["train", "data/t.csv", "--label", "colour", "--config", "config.yaml"]
PREDICT = ["predict", "run", "data/t.csv", "--output"]
EXPLAIN = ["explain", "run", "data/t.csv", "--rows", "1,2", "--output-dir", "png"]
# Every command line of the CLI tests, run in order in one process, in a copy of the
# world (relative paths, as a user types them).
LINES = {
    "train --out data": [*TRAIN, "--out", "data", "--overwrite"],
    "train --out data/images": [*TRAIN, "--out", "data/images", "--overwrite"],
    "train --out precious": [*TRAIN, "--out", "precious", "--overwrite"],
    "train --out notes.txt": [*TRAIN, "--out", "notes.txt", "--overwrite"],
    "train --out .": [*TRAIN, "--out", "."],
    "train --out . --overwrite": [*TRAIN, "--out", ".", "--overwrite"],
    "predict onto the table": [*PREDICT, "data/t.csv"],
    "predict onto the table --overwrite": [*PREDICT, "data/t.csv", "--overwrite"],
    "predict onto a link to the table": [*PREDICT, "data/link.csv", "--overwrite"],
    "predict onto the table, spelled with ..": [*PREDICT, "data/images/../t.csv", "--overwrite"],
    "predict into the run folder": [*PREDICT, "run/predictions.csv"],
    "predict new": [*PREDICT, "p.csv"],
    "predict again": [*PREDICT, "p.csv"],
    "predict again --overwrite": [*PREDICT, "p.csv", "--overwrite"],
    "export onto the weights": ["export", "run", "-o", "run/model.safetensors", "--overwrite"],
    "explain": EXPLAIN,
    "explain again": EXPLAIN,
    "explain again --overwrite": [*EXPLAIN, "--overwrite"],
}
WRITTEN = {"p.csv", "run/predictions.csv", "png/row1_image_saliency.png", "png/row2_image_saliency.png"}


@pytest.fixture(scope="module")
def ran(world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict]:
    """(results by name, files before, files after)."""
    root = copy_world(world, tmp_path_factory.mktemp("cli") / "w")
    before = snapshot(root)
    results = dict(zip(LINES, plait_many(*LINES.values(), cwd=root), strict=True))
    return results, before, snapshot(root)


def refused(result, message: str) -> bool:
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and message in lines[0]


@pytest.mark.slow
def test_train_with_overwrite_keeps_the_table_a_users_folder_and_a_file(ran):
    results, before, after = ran
    assert refused(results["train --out data"], "which this command reads")
    assert refused(results["train --out data/images"], "which this command reads")
    assert refused(results["train --out precious"], "precious exists and is not a Plait run")
    assert refused(results["train --out notes.txt"], "notes.txt exists and is not a Plait run")
    # Nothing deleted or changed; nothing added but the outputs asked for (no .old, .work, .tmp).
    assert {k: v for k, v in after.items() if k not in WRITTEN} == before


def test_out_dot_is_refused_before_training_and_leaves_nothing(ran):
    results, _, after = ran
    for name in ("train --out .", "train --out . --overwrite"):
        assert refused(results[name], "current folder"), results[name].stderr
        assert "epoch" not in results[name].stderr.lower()  # refused before training
    assert not [k for k in after if ".work" in k or ".tmp" in k]


def test_predict_never_writes_over_its_table_and_needs_overwrite(ran):
    results, before, after = ran
    for name in (
        "predict onto the table",
        "predict onto the table --overwrite",
        "predict onto a link to the table",
        "predict onto the table, spelled with ..",
        "export onto the weights",
    ):
        assert refused(results[name], "which this command reads"), (name, results[name].stderr)
    assert after["data/t.csv"] == before["data/t.csv"]
    assert after["run/model.safetensors"] == before["run/model.safetensors"]
    assert results["predict into the run folder"].returncode == 0  # a new file: fine
    assert results["predict new"].returncode == 0
    assert refused(results["predict again"], "pass --overwrite")
    assert results["predict again --overwrite"].returncode == 0


def test_explain_output_dir_replaces_saliency_pngs_only_with_overwrite(ran):
    results, _, after = ran
    assert results["explain"].returncode == 0, results["explain"].stderr
    assert refused(results["explain again"], "pass --overwrite")
    assert results["explain again --overwrite"].returncode == 0
    assert "png/row1_image_saliency.png" in after


# -- property ------------------------------------------------------------------------
TARGETS = {
    "the table": "data/t.csv",
    "a symlink to the table": "data/link.csv",
    "an image": "data/images/0.png",
    "the images folder": "data/images",
    "the data folder": "data",
    "a user's folder": "precious",
    "a user's file": "notes.txt",
    "the run folder": "run",
    "a run file": "run/model.safetensors",
    "the current folder": ".",
    "a new folder": "new",
    "a new file": "new.csv",
}


def command(name: str, out: str, overwrite: bool) -> list[str]:
    flag = ["--overwrite"] if overwrite else []
    if name == "train":
        return ["train", "data/t.csv", "--label", "colour", "--config", "config.yaml", "--out", out, *flag]
    if name == "predict":
        return ["predict", "run", "data/t.csv", "--output", out, *flag]
    if name == "export":
        return ["export", "run", "--format", "torchscript", "--output", out, *flag]
    return ["explain", "run", "data/t.csv", "--rows", "1", "--output-dir", out, *flag]


@contextlib.contextmanager
def inside(folder: Path):
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@settings(
    max_examples=24,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(["train", "predict", "export", "explain"]),
    target=st.sampled_from(sorted(TARGETS)),
    overwrite=st.booleans(),
)
def test_no_command_touches_a_path_it_was_not_asked_to_write(
    world: Path, tmp_path_factory: pytest.TempPathFactory, name: str, target: str, overwrite: bool
):
    root = copy_world(world, tmp_path_factory.mktemp("prop") / "w")
    out = TARGETS[target]
    before = snapshot(root)
    with inside(root):
        result = CliRunner().invoke(app, command(name, out, overwrite))
    assert result.exit_code in (0, 2), (result.output, result.exception)
    after = snapshot(root)
    named = "" if out == "." else out

    def inside_output(key: str) -> bool:
        return named == "" or key == named or key.startswith(named + "/")

    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    kept = {k for k in changed if k in before}  # existing files rewritten or deleted
    assert all(inside_output(k) for k in changed), f"{command(name, out, overwrite)} touched {changed}"
    assert overwrite or not kept, f"{command(name, out, overwrite)} replaced {kept} without --overwrite"
    if result.exit_code == 0:
        assert (root / (named or ".")).exists()


def test_run_files_are_all_readable_alike(world: Path):
    """model.safetensors (written private by safetensors) has the mode of the other files."""
    modes = {p.name: p.stat().st_mode & 0o777 for p in (world / "run").iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes
    assert modes["model.safetensors"] == modes["config.yaml"]

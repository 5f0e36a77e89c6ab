"""Damaged run folders through the real command: one line naming the file, exit 2.

In process (typer's CliRunner): a subprocess per case would spend its time importing torch."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import plait
from plait.cli import app
from tests.conftest import tiny_run


def plait_cli(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("integrity"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _processors(change):
    def mutate(path: Path) -> None:
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))

    return mutate


def _link_out(path: Path) -> None:
    path.unlink()
    path.symlink_to("/etc/passwd" if Path("/etc/passwd").exists() else Path(__file__).resolve())


CASES = {
    # name: (file, mutation, expected part of the message)
    **{
        f"{name} missing": (name, Path.unlink, f"is missing {name}")
        for name in ("config.yaml", "processors.json", "model.safetensors", "plait.json")
    },
    **{
        f"{name} empty": (name, lambda p: p.write_bytes(b""), f"{name} is damaged")
        for name in ("config.yaml", "processors.json", "model.safetensors", "plait.json")
    },
    **{
        f"{name} garbage": (name, lambda p: p.write_bytes(os.urandom(300)), f"{name} is damaged")
        for name in ("config.yaml", "processors.json", "model.safetensors", "plait.json")
    },
    **{
        f"{name} truncated": (name, _truncate, f"{name} is damaged")
        for name in ("config.yaml", "processors.json", "model.safetensors", "plait.json")
    },
    **{
        f"{name} links out": (name, _link_out, "paths inside a run folder cannot escape it")
        for name in ("config.yaml", "model.safetensors")
    },
    "weights of another model": (
        "model.safetensors",
        lambda p: save_file({"w": torch.zeros(3, 4)}, str(p)),
        "model.safetensors does not match config.yaml (the model it builds): missing tensor",
    ),
    "same shapes, other weights": (
        "model.safetensors",
        lambda p: save_file({k: torch.zeros_like(v) for k, v in load_file(str(p)).items()}, str(p)),
        "model.safetensors is damaged: its content differs from the checksum",
    ),
    "processor without fitted state": (
        "processors.json",
        _processors(lambda s: s["inputs"]["image"].update(fitted={})),
        "processors.json is damaged: input 'image' holds no fitted state",
    ),
    "processor with an unknown option": (
        "processors.json",
        _processors(lambda s: s["inputs"]["image"]["params"].update(bogus=1)),
        "unexpected keyword argument 'bogus'",
    ),
    "processors of other inputs": (
        "processors.json",
        _processors(lambda s: s["inputs"].update(photo=s["inputs"].pop("image"))),
        "processors.json does not match config.yaml",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_run_folder_is_one_line_naming_the_file(trained, tmp_path: Path, case: str):
    run, table = trained
    name, mutate, expected = CASES[case]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    mutate(copy / name)
    result = plait_cli("predict", copy, table, "--output", tmp_path / "p.csv")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert name in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.csv").exists()


def test_a_link_inside_the_folder_is_fine(trained, tmp_path: Path):
    copy = tmp_path / "run"
    shutil.copytree(trained[0], copy)
    (copy / "alias.json").symlink_to(copy / "metrics.json")
    assert plait.load(copy).config.outputs[0].name == "colour"


@pytest.mark.parametrize("content", [b"", b"{nope", b"\xff\xfe\x00garbage"])
def test_report_names_a_damaged_metrics_json(trained, tmp_path: Path, content: bytes):
    copy = tmp_path / "run"
    shutil.copytree(trained[0], copy)
    (copy / "metrics.json").write_bytes(content)
    result = plait_cli("report", copy)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "metrics.json is damaged" in lines[0], result.stderr


def test_predict_with_data_root(trained, tmp_path: Path):
    from plait.data import paths

    run, table = trained
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = plait_cli("--data-root", elsewhere, "predict", run, table, "--output", tmp_path / "p.csv")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "column 'image', row 1:" in lines[0]
    assert f"outside --data-root {elsewhere.resolve()}" in lines[0]
    assert paths.data_root() is None  # in process: the command's root does not outlive it
    result = plait_cli("--data-root", table.parent, "predict", run, table, "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert paths.data_root() is None

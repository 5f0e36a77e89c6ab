"""Atomic outputs: a failure mid-write leaves the previous version intact and no
temporary file behind (files, run folders, predictions, exports, checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from plait.atomic import atomic_path, atomic_write_text
from plait.export import export_run
from plait.resume import SafeCheckpointIO
from plait.runfolder import staging
from plait.safe_load import load_checkpoint
from plait.train import fit
from tests.conftest import tiny_config, tiny_run


class DiskFull(OSError):
    pass


def half_write_then_fail(path: Path, *args: object, **kwargs: object) -> None:
    Path(path).write_bytes(b"half of it")
    raise DiskFull(28, "No space left on device")


def only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_keeps_the_previous_version(tmp_path: Path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "version 1")
    with pytest.raises(DiskFull), atomic_path(target) as tmp:
        half_write_then_fail(tmp)
    assert target.read_text() == "version 1" and only(tmp_path) == ["out.txt"]


def test_staged_run_folder_keeps_the_previous_run(tmp_path: Path):
    run = tmp_path / "run"
    with staging(run) as tmp:
        (tmp / "model.safetensors").write_text("old weights")
        (tmp / "plait.json").write_text("{}")  # a run folder: --overwrite may replace it
    with pytest.raises(RuntimeError), staging(run, overwrite=True) as tmp:
        (tmp / "model.safetensors").write_text("new wei")
        raise RuntimeError("crash while writing the new run")
    assert (run / "model.safetensors").read_text() == "old weights"
    assert only(tmp_path) == ["run"]  # no temporary folder left


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("atomic"), rows=30, epochs=3)


def test_failed_training_with_overwrite_keeps_the_previous_run(run_dir: tuple[Path, Path], monkeypatch):
    run, table = run_dir
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    import plait.train

    def crash(*args: object, **kwargs: object) -> None:
        raise DiskFull(28, "No space left on device")

    monkeypatch.setattr(plait.train, "write_run", crash)
    with pytest.raises(DiskFull):
        fit(table, "colour", tiny_config(), out=run, overwrite=True, verbose=False)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert not [n for n in only(run.parent) if ".tmp" in n]  # no half-written folder
    # The checkpoint stays beside it: the new training is not lost either (--resume).
    assert (run.parent / ".run.work" / "last.ckpt").is_file()


def test_failed_prediction_write_keeps_the_previous_file(run_dir: tuple[Path, Path], monkeypatch):
    from typer.testing import CliRunner

    from plait.cli import app

    run, table = run_dir
    output = run.parent / "predictions.csv"
    runner = CliRunner()
    assert runner.invoke(app, ["predict", str(run), str(table), "--output", str(output)]).exit_code == 0
    before = output.read_bytes()
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **kw: half_write_then_fail(path))
    result = runner.invoke(app, ["predict", str(run), str(table), "--output", str(output), "--overwrite"])
    assert isinstance(result.exception, DiskFull)  # failed while writing, not refused before
    assert output.read_bytes() == before
    assert not [p for p in run.parent.iterdir() if ".tmp" in p.name]


def test_failed_export_keeps_the_previous_model_file(run_dir: tuple[Path, Path], monkeypatch):
    import plait.export

    run, _ = run_dir
    output = run.parent / "model.pt"
    export_run(run, "torchscript", output)
    before = output.read_bytes()
    monkeypatch.setattr(plait.export, "_write", lambda *args: half_write_then_fail(args[-1]))
    with pytest.raises(DiskFull):
        export_run(run, "torchscript", output)
    assert output.read_bytes() == before


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    io = SafeCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: half_write_then_fail(f))
    with pytest.raises(DiskFull):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(3)}, path)
    assert load_checkpoint(path)["step"] == 1 and only(tmp_path) == ["last.ckpt"]

"""Resume after a kill, graceful stop on SIGINT/SIGTERM, and the resumable data order.

The subprocess tests train a real run through the CLI, interrupt it once its first
mid-epoch checkpoint exists, and check that the resumed run ends exactly where an
uninterrupted one does (CPU, same seed: the same per-epoch losses and metrics)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
import yaml

from plait.data.order import ResumableLoader
from plait.errors import ConfigError, RunFolderError
from plait.resume import (
    LAST,
    GracefulStop,
    ResumeCheckpoint,
    Stopped,
    check_same_run,
    find_checkpoint,
    start_work,
    work_dir,
)
from tests.conftest import TINY_ENCODERS, make_table

CONFIG = {
    # 81 training rows in batches of 8: 11 steps an epoch, a checkpoint every 4 steps,
    # so checkpoints fall mid-epoch.
    "trainer": {
        "epochs": 4,
        "batch_size": 8,
        "learning_rate": 0.01,
        "progress": False,
        "checkpoint_every_n_steps": 4,
        "patience": 10,
    },
    "inputs": [
        {"name": "image", "encoder": TINY_ENCODERS["image"]},
        {"name": "caption", "encoder": TINY_ENCODERS["text"]},
        {"name": "size"},
    ],
}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    make_table(folder, rows=90).to_csv(folder / "t.csv", index=False)
    (folder / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    return folder


def command(folder: Path, out: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "plait.cli",
        "train",
        str(folder / "t.csv"),
        "--label",
        "colour",
        "--config",
        str(folder / "c.yaml"),
        "--out",
        str(folder / out),
        *extra,
    ]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def start_and_interrupt(
    args: list[str], checkpoint: Path, send: int, after_epoch: bool = False
) -> subprocess.Popen:
    """Start training; once `checkpoint` exists (a mid-epoch one; with `after_epoch`, one
    written after the first epoch's validation), send `send` (a signal)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    raw_log = checkpoint.parent / "metrics.csv"

    def ready() -> bool:
        if not after_epoch:
            return checkpoint.exists()
        return raw_log.exists() and "val_loss" in raw_log.read_text() and checkpoint.exists()

    while not ready():
        assert proc.poll() is None, f"finished before its first checkpoint: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.02)
    os.kill(proc.pid, send)
    proc.wait(timeout=300)
    return proc


def epoch_log(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "log.csv").set_index("epoch")


@pytest.fixture(scope="module")
def reference(table: Path) -> Path:
    result = run(command(table, "ref"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not work_dir(table / "ref").exists()  # removed once the run folder is complete
    return table / "ref"


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(table: Path, reference: Path):
    out = table / "killed"
    # Killed after an epoch-end checkpoint: the epochs logged before must survive too.
    proc = start_and_interrupt(
        command(table, "killed"), work_dir(out) / LAST, signal.SIGKILL, after_epoch=True
    )
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # never a half-written run folder
    resumed = run(command(table, "killed", "--resume", str(out)))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ref, got = (
        json.loads((reference / "metrics.json").read_text()),
        json.loads((out / "metrics.json").read_text()),
    )
    assert got["validation"] == pytest.approx(ref["validation"], abs=1e-6)
    assert got["epochs"] == ref["epochs"]
    # Per-epoch validation loss equal too: the same batches, in the same order, same RNG.
    pd.testing.assert_series_equal(epoch_log(out)["val_loss"], epoch_log(reference)["val_loss"], atol=1e-6)
    assert not work_dir(out).exists()


@pytest.mark.slow
def test_sigterm_stops_gracefully_with_a_checkpoint_and_resumes(table: Path, reference: Path):
    out = table / "stopped"
    proc = start_and_interrupt(command(table, "stopped"), work_dir(out) / LAST, signal.SIGTERM)
    stderr = proc.stderr.read()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM at epoch" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert (work_dir(out) / LAST).is_file() and not out.exists()
    # Without --resume the interrupted run is not silently thrown away.
    again = run(command(table, "stopped"))
    assert again.returncode == 2 and "was interrupted; continue it with --resume" in again.stderr
    resumed = run(command(table, "stopped", "--resume", str(out)))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    pd.testing.assert_series_equal(epoch_log(out)["val_loss"], epoch_log(reference)["val_loss"], atol=1e-6)


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _SigtermAfterBatchEnd(L.Callback):
    """Sends SIGTERM to this process at the end of step 2, after GracefulStop's
    on_train_batch_end has run: the moment the CLI test hits when its signal follows
    the checkpoint that step wrote."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_after_a_steps_callbacks_stops_at_the_next_step(tmp_path: Path):
    # Lightning sets its own SIGTERM handler inside fit(); had it stayed, it would end
    # this run with SystemExit(0) before the next step, with no checkpoint and no message.
    stop = GracefulStop(ResumeCheckpoint(tmp_path / LAST, every=1000), "--resume here")
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=[stop, _SigtermAfterBatchEnd()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    data = torch.utils.data.TensorDataset(torch.randn(16, 2))
    before = signal.getsignal(signal.SIGTERM)
    stop.install()
    try:
        with pytest.raises(Stopped, match="stopped by SIGTERM at epoch 1, step 3") as stopped:
            trainer.fit(_Tiny(), torch.utils.data.DataLoader(data, batch_size=2))
    finally:
        stop.uninstall()
    assert stopped.value.exit_code == 128 + signal.SIGTERM and (tmp_path / LAST).is_file()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once(table: Path):
    out = table / "twice"
    proc = subprocess.Popen(
        command(table, "twice"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while not (work_dir(out) / LAST).exists():  # training is under way
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.01)
    os.kill(proc.pid, signal.SIGINT)
    start = time.monotonic()
    proc.wait(timeout=120)
    assert proc.returncode != 0  # 1 (Lightning's KeyboardInterrupt exit) or 130
    assert time.monotonic() - start < 60 and not out.exists()
    assert (work_dir(out) / LAST).is_file()  # the last checkpoint stays


def test_resume_refuses_another_config_other_data_and_missing_checkpoints(tmp_path: Path):
    with pytest.raises(RunFolderError, match="nothing to resume"):
        find_checkpoint(tmp_path / "never", None)
    out = tmp_path / "run"
    work = work_dir(out)
    config = yaml.safe_dump(CONFIG)
    start_work(work, out, config, {"sha256": "abc"})
    (work / LAST).write_bytes(b"")
    # The run folder, its work folder or the checkpoint file: all name the same run.
    assert find_checkpoint(out, None) == (work / LAST, out)
    assert find_checkpoint(work, None) == (work / LAST, out)
    assert find_checkpoint(work / LAST, None) == (work / LAST, out)
    check_same_run(work, config, {"sha256": "abc"})  # the same: fine
    other = yaml.safe_dump(dict(CONFIG, trainer={**CONFIG["trainer"], "learning_rate": 0.02}))
    with pytest.raises(
        ConfigError, match=r"config differs from the interrupted run's \(trainer.learning_rate\)"
    ):
        check_same_run(work, other, {"sha256": "abc"})
    with pytest.raises(ConfigError, match="data differs"):
        check_same_run(work, config, {"sha256": "def"})


def test_loader_resumes_mid_epoch_with_the_same_order():
    data = torch.utils.data.TensorDataset(torch.arange(50))
    full = ResumableLoader(data, 8, seed=3)
    full.order.set_epoch(2)
    whole = [b[0].tolist() for b in full]
    part = ResumableLoader(data, 8, seed=3)
    part.order.set_epoch(2)
    it = iter(part)
    seen = [next(it)[0].tolist() for _ in range(3)]
    position = part.position()
    assert position == {"epoch": 2, "batches": 3}
    fresh = ResumableLoader(data, 8, seed=3)
    it = iter(fresh)  # an iterator made before the position arrives (as Lightning does) still resumes
    fresh.resume_from(position)
    rest = [b[0].tolist() for b in it]
    assert seen + rest == whole
    assert fresh.position() == {"epoch": 2, "batches": 7}
    fresh.order.set_epoch(3)  # the next epoch is whole and in a new order
    again = [v for b in fresh for v in b[0].tolist()]
    assert sorted(again) == list(range(50)) and again != [v for b in whole for v in b]

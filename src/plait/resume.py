"""Surviving a crash or a kill: resumable checkpoints and a graceful stop.

While a run trains, its working files live beside the future run folder, in a hidden
work folder `.<name>.work/` (the run folder itself appears only when complete):

    last.ckpt      everything needed to continue: weights, optimiser, scheduler, loop
                   counters, early-stopping and best-model state, RNG states and the
                   position in the epoch's data order; rewritten atomically every
                   `trainer.checkpoint_every_n_steps` steps and after each epoch
    checkpoints/   the best weights so far (by val_loss)
    metrics.csv    Lightning's raw training log
    resume.json    the resolved config and data hash the run started with

`plait train ... --resume RUN` (the run folder being written, or a checkpoint file)
continues from last.ckpt; the work folder is removed once the run folder is complete.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from plait.atomic import atomic_path, atomic_write_text
from plait.data.order import ResumableLoader
from plait.errors import ConfigError, PlaitError, RunFolderError
from plait.output_paths import real
from plait.safe_load import load_checkpoint

LAST = "last.ckpt"
RESUME_INFO = "resume.json"


def work_dir(out_dir: Path) -> Path:
    out_dir = real(out_dir)  # `runs/x/..` names runs, whose work folder is .runs.work
    return out_dir.parent / f".{out_dir.name}.work"


def remove_work(work: Path) -> None:
    """Delete a stale work folder of an interrupted run (with --overwrite). Only one
    Plait wrote: a folder of that name holding anything else is the user's."""
    if not work.exists():
        return
    if not (work / RESUME_INFO).is_file() and any(work.iterdir()):
        raise PlaitError(f"{work} exists and is not a Plait work folder; move it or choose another --out")
    shutil.rmtree(work)


def find_checkpoint(resume: Path, out_dir: Path | None) -> tuple[Path, Path]:
    """(checkpoint file, run folder to write) for `--resume RESUME`: the run folder an
    interrupted run was writing, its work folder, or a checkpoint file in one."""
    resume = Path(resume)
    if resume.is_file():
        checkpoint, work = resume, resume.parent
    elif (resume / LAST).is_file():  # a work folder
        checkpoint, work = resume / LAST, resume
    else:
        work = work_dir(resume)
        checkpoint = work / LAST
        if not checkpoint.is_file():
            finished = (resume / "model.safetensors").is_file()
            raise RunFolderError(
                f"{resume} is a finished run; nothing to resume"
                if finished
                else f"nothing to resume at {resume}: no checkpoint {checkpoint} (a run killed before "
                "its first checkpoint starts over without --resume)"
            )
    info = _read_info(work)
    target = Path(out_dir) if out_dir is not None else Path(info.get("out", resume))
    return checkpoint, target


def _read_info(work: Path) -> dict[str, Any]:
    path = work / RESUME_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is damaged: not valid JSON ({err})") from None
    return info if isinstance(info, dict) else {}


def start_work(work: Path, out_dir: Path, config_yaml: str, data_hash: dict[str, Any] | None) -> None:
    """Record what this run trains on, so a resume can check it is the same run."""
    work.mkdir(parents=True, exist_ok=True)
    info = {"out": str(out_dir), "config": config_yaml, "data": data_hash}
    atomic_write_text(work / RESUME_INFO, json.dumps(info, indent=1))


def check_same_run(work: Path, config_yaml: str, data_hash: dict[str, Any] | None) -> None:
    """Refuse to resume with another config or other data (the checkpoint would not fit
    them, or would silently mix two trainings)."""
    info = _read_info(work)
    if not info:
        return  # a checkpoint given on its own: nothing recorded to compare
    if info.get("config") != config_yaml:
        before, now = _top_level(info.get("config", "")), _top_level(config_yaml)
        changed = ", ".join(sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k)))
        raise ConfigError(
            f"--resume: the config differs from the interrupted run's ({changed or 'formatting'}); "
            "resume with the same command and config"
        )
    saved = (info.get("data") or {}).get("sha256")
    if saved and data_hash and saved != data_hash.get("sha256"):
        raise ConfigError("--resume: the data differs from the interrupted run's (its content hash changed)")


def _top_level(config_yaml: str) -> dict[str, str]:
    """Top-level config sections as text, to name the ones that changed."""
    import yaml

    data = yaml.safe_load(config_yaml) or {}
    out: dict[str, str] = {}
    for key, value in data.items():
        if key == "trainer" and isinstance(value, dict):
            out.update({f"trainer.{k}": json.dumps(v, sort_keys=True) for k, v in value.items()})
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically (temporary file, then rename: a kill or a full
    disk mid-write leaves the previous checkpoint intact) and read weights-only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path)


class ResumeCheckpoint(Checkpoint):
    """Writes last.ckpt every `every` steps and at each epoch's end, and carries the
    data order's position and the RNG states in it (the rest is Lightning's checkpoint)."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = Path(path), every
        self.loader: ResumableLoader | None = None  # the training loader, whose position is saved

    @property
    def state_key(self) -> str:
        return "PlaitResume"

    def save(self, trainer: L.Trainer) -> None:
        for logger in trainer.loggers:  # the log so far too, so a resumed run keeps its epochs
            logger.save()
        trainer.save_checkpoint(self.path)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step % self.every == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # After the epoch's validation, early stopping and the best-model checkpoint (a
        # Checkpoint callback runs after the others), as Lightning's ModelCheckpoint does.
        self.save(trainer)

    # The data order's position, and the RNG states: augmentation, dropout and
    # modality dropout draw from them each step.
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "loader": self.loader.position() if self.loader is not None else None,
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.loader is not None and state.get("loader"):
            self.loader.resume_from(state["loader"])
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> tuple:
    # As plain values and a tensor: weights-only loading accepts no numpy arrays.
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # type: ignore[misc]
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))


class Stopped(PlaitError):
    """Training stopped on request (Ctrl-C / SIGTERM) after saving a checkpoint."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class GracefulStop(L.Callback):
    """First Ctrl-C (SIGINT) or SIGTERM: finish the current step, save last.ckpt, stop
    with a message and exit code 128 + signal. A second Ctrl-C stops at once."""

    def __init__(self, saver: ResumeCheckpoint, resume_hint: str) -> None:
        self.saver, self.hint = saver, resume_hint
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only (e.g. fit() inside a server thread)
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Again, over the SIGTERM handler Lightning sets in fit() after on_fit_start: its
        # own, which calls ours too, would raise SystemExit(0) at the end of the step
        # when the signal lands after our on_train_batch_end, so the run would stop with
        # exit code 0 and no message. (On SLURM with auto-requeue this also replaces its
        # requeue-on-SIGTERM; --resume does that job.)
        self.install()

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:  # the second one: stop now
            self.uninstall()
            raise KeyboardInterrupt
        self.requested = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
            "(Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        stop = self.requested is not None
        if trainer.world_size > 1:  # every process stops at the same step, or DDP hangs
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        self.saver.save(trainer)
        signum = self.requested or signal.SIGTERM
        raise Stopped(
            f"stopped by {signal.Signals(signum).name} at epoch {trainer.current_epoch + 1}, step "
            f"{trainer.global_step}; checkpoint saved in {self.saver.path}; continue with {self.hint}",
            signum,
        )

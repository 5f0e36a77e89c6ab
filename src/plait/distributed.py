"""Several processes, one run: the Trainer's device settings and which process writes.

Under DDP every process runs `fit` (Lightning's `ddp` re-runs the script, torchrun and
SLURM start one process per device). All of them train; only global rank 0 writes the
run folder.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator

from plait.config import TrainerConfig
from plait.errors import ConfigError


def device_options(tc: TrainerConfig) -> dict[str, Any]:
    """The Trainer arguments that say where and how to run."""
    return {
        "accelerator": tc.accelerator,
        "devices": tc.devices,
        "num_nodes": tc.num_nodes,
        "strategy": tc.strategy,
        "precision": tc.precision,
    }


def global_rank(tc: TrainerConfig) -> int:
    """This process's global rank (0 without distribution), from the cluster environment
    Lightning detects (its own launcher, torchrun, SLURM). Checks the device settings
    against this machine first, so a bad combination fails before data is processed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = L.Trainer(
                **device_options(tc), logger=False, enable_checkpointing=False, enable_progress_bar=False
            )
    except (ValueError, RuntimeError, TypeError) as err:  # Lightning's MisconfigurationException too
        message = " ".join(str(err).split())
        raise ConfigError(f"trainer settings {_settings(tc)} cannot run here: {message}") from None
    if tc.precision in ("16-mixed", "16-true") and isinstance(probe.accelerator, CPUAccelerator):
        # Lightning would quietly switch 16-mixed to bf16-mixed on a CPU.
        raise ConfigError(
            f"precision {tc.precision!r} needs a GPU; on CPU use bf16-mixed or 32-true "
            f"(got accelerator {tc.accelerator!r}, which resolved to cpu)"
        )
    return probe.global_rank


def _settings(tc: TrainerConfig) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in device_options(tc).items())


def leave_process_group() -> None:
    """End the process group once training is over, so rank 0's evaluation afterwards
    (torchmetrics, retrieval) computes on its own instead of waiting for the others."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def gather_objects(value: Any) -> list[Any]:
    """[value of rank 0, value of rank 1, …] across the process group; [value] alone."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [value]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, value)
    return out

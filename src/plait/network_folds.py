"""Out-of-fold predictions of the network on its training rows (for ensemble selection).

The ensemble's weights are chosen where every candidate's predictions are honest. The
network's are honest on the validation rows only, a few hundred on a small table, where
one selection overfits (issue 20: on clothing reviews it weighted the network over
LightGBM, which was better on the test rows). Trained again K times on the training
rows, each time without one fold, the network gives an honest prediction of every
training row too, and the selection then sees every row of the training and validation
splits. These fold networks only judge; the run keeps and serves the one network
trained on the whole training split (AutoGluon's refit-full uses the same idea).
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from plait.config import ResolvedConfig, TrainerConfig
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.processors import TargetProcessor
from plait.ensemble.bagging import FOLDS, fold_rows
from plait.ensemble.members import TASKS
from plait.resume import SafeCheckpointIO
from plait.safe_load import load_checkpoint
from plait.system import MultimodalSystem

# With --time-limit, the fold networks may take this share of what is left for the
# candidates (the rest: bagging LightGBM and the linear probe); without one, they run
# when estimated under FOLDS_UNLIMITED_SECONDS (about four times the network's training).
FOLDS_SHARE = 0.6
FOLDS_UNLIMITED_SECONDS = 300.0


def fold_estimate(train_seconds: float, folds: int = FOLDS) -> float:
    """Seconds K fold networks take, each on (K-1)/K of the rows the network took
    `train_seconds` over."""
    return folds * train_seconds * (folds - 1) / folds


def out_of_fold(
    build: Callable[[int], MultimodalSystem],
    train: TableDataset,
    stratify: tuple[np.ndarray, str],
    tc: TrainerConfig,
    seed: int,
    deadline: float,
    folds: int = FOLDS,
) -> dict[str, np.ndarray] | None:
    """Target → the network's activated prediction of every row of `train` ((N,) or
    (N, C)), each from a network trained without that row's fold and early-stopped on
    it. `build(val_rows)` gives a fresh system. None when `deadline` (time.monotonic)
    ends a fold first: partial predictions would judge the network on some rows only."""
    labels, kind = stratify
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="plait-folds-") as work:
        for k, held in enumerate(fold_rows(labels, kind, folds, seed)):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            rest = np.setdiff1d(np.arange(train.n_rows), held)
            fitted, judged = _rows(train, rest, training=True), _rows(train, held, training=False)
            system = build(len(held))
            checkpoint = ModelCheckpoint(
                dirpath=Path(work) / str(k),
                monitor=system.monitor,
                mode=system.monitor_mode,
                save_weights_only=True,
            )
            early = EarlyStopping(
                system.monitor, patience=tc.patience, min_delta=tc.min_delta, mode=system.monitor_mode
            )
            trainer = L.Trainer(
                accelerator=tc.accelerator,
                devices=1,  # one process: the main training's devices may be several
                precision=tc.precision,
                max_epochs=tc.epochs,
                max_time=timedelta(seconds=left),
                gradient_clip_val=tc.gradient_clip,
                callbacks=[checkpoint, early],
                plugins=[SafeCheckpointIO()],
                logger=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                default_root_dir=work,
            )
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ".*does not have many workers.*")
                warnings.filterwarnings("ignore", r".*module\(s\) in eval mode.*")
                trainer.fit(
                    system,
                    make_loader(fitted, tc.batch_size, shuffle=True, seed=seed + k, resumable=False),
                    make_loader(judged, tc.eval_batch_size, shuffle=False),
                )
            if time.monotonic() > deadline:
                return None  # stopped by the time, not by its validation rows
            if checkpoint.best_model_path:
                system.load_state_dict(load_checkpoint(checkpoint.best_model_path)["state_dict"])
            model = system.model.cpu().eval()
            parts: dict[str, list[np.ndarray]] = {}
            with torch.inference_mode():
                for batch in make_loader(judged, tc.eval_batch_size, shuffle=False):
                    for target, pred in model.predict(batch.inputs, batch.present).items():
                        parts.setdefault(target, []).append(pred.double().numpy())
            for target, chunks in parts.items():
                pred = np.concatenate(chunks)  # (len(held),) or (len(held), C), in held's order
                out.setdefault(target, np.zeros((train.n_rows, *pred.shape[1:])))[held] = pred
    return out


def network_oof(
    build: Callable[[int], MultimodalSystem],
    cfg: ResolvedConfig,
    targets: dict[str, TargetProcessor],
    train: TableDataset,
    train_seconds: float,
    deadline: float | None,
) -> dict[str, np.ndarray] | None:
    """out_of_fold when K fold networks fit the budget: with a limit (`deadline`, by which
    the candidates must be done), within FOLDS_SHARE of what is left; without one, when
    they are estimated under FOLDS_UNLIMITED_SECONDS. Else None: the ensemble's
    selection then uses the validation rows alone."""
    estimate = fold_estimate(train_seconds)
    now = time.monotonic()
    if deadline is None:
        if estimate > FOLDS_UNLIMITED_SECONDS:
            return None
        until = now + 2 * FOLDS_UNLIMITED_SECONDS  # a bound, not a goal: folds stop early
    else:
        if estimate > FOLDS_SHARE * (deadline - now):
            return None
        until = now + FOLDS_SHARE * (deadline - now)
    stratify = next((t for t, p in targets.items() if p.kind in TASKS), next(iter(targets)))
    labels = (train.target_values(stratify).double().numpy(), targets[stratify].kind)
    return out_of_fold(build, train, labels, cfg.trainer, cfg.seed, until)


def _rows(dataset: TableDataset, rows: np.ndarray, training: bool) -> TableDataset:
    """`dataset` serving only its rows `rows` (positions among those it serves), with
    training-time preprocessing (augmentation) on or off. The columns are shared."""
    part = copy.copy(dataset)
    part.keep = dataset.keep[torch.as_tensor(rows, dtype=torch.long)]
    part.training = training
    return part

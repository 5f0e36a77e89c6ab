"""Out-of-fold predictions of the network on its training rows (for ensemble selection).

The ensemble's weights are chosen where every candidate's predictions are honest. The
network's are honest on the validation rows only, a few hundred on a small table, where
one selection overfits (issue 20: on clothing reviews it weighted the network over
LightGBM, which was better on the test rows). Trained again K times on the training
rows, each time without one fold, the network gives an honest prediction of every
training row too, and the selection then sees every row of the training and validation
splits. These fold networks only judge; the run keeps and serves the one network
trained on the whole training split (AutoGluon's refit-full uses the same idea).

The second networks of the ensemble (plait.ensemble.networks: the run's network with
another fusion) are trained here too, with fold networks of their own.
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from plait.config import ComponentSpec, ResolvedConfig, TrainerConfig
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.processors import TargetProcessor
from plait.ensemble.bagging import FOLDS, fold_rows
from plait.ensemble.members import TASKS
from plait.ensemble.networks import SECOND_FUSIONS, NetworkCandidate
from plait.model import MultimodalModel
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
    for k, held in enumerate(fold_rows(labels, kind, folds, seed)):
        if time.monotonic() >= deadline:
            return None  # not even built: the budget is spent
        rest = np.setdiff1d(np.arange(train.n_rows), held)
        fitted, judged = _rows(train, rest, training=True), _rows(train, held, training=False)
        model = fit_network(build(len(held)), fitted, judged, tc, seed + k, deadline)
        if model is None:
            return None
        for target, pred in predict_rows(model, judged, tc).items():  # in held's order
            out.setdefault(target, np.zeros((train.n_rows, *pred.shape[1:])))[held] = pred
    return out


def fit_network(
    system: MultimodalSystem,
    fitted: TableDataset,
    judged: TableDataset,
    tc: TrainerConfig,
    seed: int,
    deadline: float,
) -> MultimodalModel | None:
    """`system` trained on `fitted` and early-stopped on `judged`, with its best epoch's
    weights, in eval mode on the CPU; None when `deadline` (time.monotonic) ends it
    first: a network stopped by the clock is not judged."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    with tempfile.TemporaryDirectory(prefix="plait-network-") as work:
        checkpoint = ModelCheckpoint(
            dirpath=work, monitor=system.monitor, mode=system.monitor_mode, save_weights_only=True
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
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")  # Lightning on this torch
            trainer.fit(
                system,
                make_loader(fitted, tc.batch_size, shuffle=True, seed=seed, resumable=False),
                make_loader(judged, tc.eval_batch_size, shuffle=False),
            )
        if time.monotonic() > deadline:
            return None  # stopped by the time, not by its validation rows
        if checkpoint.best_model_path:
            system.load_state_dict(load_checkpoint(checkpoint.best_model_path)["state_dict"])
    return system.model.cpu().eval().to(memory_format=torch.contiguous_format)


def predict_rows(model: MultimodalModel, rows: TableDataset, tc: TrainerConfig) -> dict[str, np.ndarray]:
    """Target → `model`'s activated predictions of `rows`, in their order ((N,) or (N, C))."""
    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for batch in make_loader(rows, tc.eval_batch_size, shuffle=False):
            for target, pred in model.predict(batch.inputs, batch.present).items():
                parts.setdefault(target, []).append(pred.double().numpy())
    return {target: np.concatenate(chunks) for target, chunks in parts.items()}


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


def network_candidates(
    names: list[str],
    cfg: ResolvedConfig,
    build: Callable[[ResolvedConfig, int], MultimodalSystem],
    targets: dict[str, TargetProcessor],
    datasets: dict[str, TableDataset],
    train_seconds: float,
    deadline: float | None,
    with_oof: bool,
) -> dict[str, NetworkCandidate]:
    """Each network candidate in `names` (SECOND_FUSIONS) that fits the budget: trained
    on the training rows and early-stopped on the validation rows like the run's network
    (`build(cfg, val_rows)` gives a fresh system), and, when `with_oof` (the run's
    network has out-of-fold predictions), its fold networks too: a candidate honest on
    fewer rows than the others would move the selection back to the validation rows.
    It is left out when it would not fit (with a limit, FOLDS_SHARE of what is left;
    without one, its fold networks under FOLDS_UNLIMITED_SECONDS)."""
    out: dict[str, NetworkCandidate] = {}
    tc = cfg.trainer
    for name in (n for n in names if n in SECOND_FUSIONS):
        estimate = train_seconds + (fold_estimate(train_seconds) if with_oof else 0.0)
        now = time.monotonic()
        if deadline is None:
            if with_oof and fold_estimate(train_seconds) > FOLDS_UNLIMITED_SECONDS:
                continue
            until = now + 2 * (estimate + FOLDS_UNLIMITED_SECONDS)  # a bound: early stopping ends it
        else:
            if estimate > FOLDS_SHARE * (deadline - now):
                continue
            until = now + FOLDS_SHARE * (deadline - now)
        other = cfg.model_copy(update={"fusion": ComponentSpec(name=SECOND_FUSIONS[name])})
        start = time.perf_counter()
        model = fit_network(
            build(other, datasets["val"].n_rows), datasets["train"], datasets["val"], tc, cfg.seed, until
        )
        if model is None:
            continue
        oof = None
        if with_oof:
            stratify = next((t for t, p in targets.items() if p.kind in TASKS), next(iter(targets)))
            labels = (datasets["train"].target_values(stratify).double().numpy(), targets[stratify].kind)
            oof = out_of_fold(partial(build, other), datasets["train"], labels, tc, cfg.seed, until)
            if oof is None:
                continue
        val = predict_rows(model, datasets["val"], tc)
        fusion = other.fusion.model_dump()
        out[name] = NetworkCandidate(fusion, model, val, oof, time.perf_counter() - start)
    return out


def _rows(dataset: TableDataset, rows: np.ndarray, training: bool) -> TableDataset:
    """`dataset` serving only its rows `rows` (positions among those it serves), with
    training-time preprocessing (augmentation) on or off. The columns are shared."""
    part = copy.copy(dataset)
    part.keep = dataset.keep[torch.as_tensor(rows, dtype=torch.long)]
    part.training = training
    return part

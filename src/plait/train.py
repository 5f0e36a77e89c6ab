"""fit(table, label, config) → a run folder and a Predictor."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.table import Table as RichTable
from safetensors.torch import save_model
from torch._dynamo.exc import BackendCompilerFailed
from torch.utils.data import DataLoader

from plait.budget import MEMBERS_SHARE, RESERVE_SHARE, TEXT_RESERVE_SHARE, Budget, BudgetBar, format_seconds
from plait.build import build_model
from plait.config import (
    OutputConfig,
    PlaitConfig,
    ResolvedConfig,
    TrainerConfig,
    apply_overrides,
    as_config,
)
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset, missing_rate, unusable_cells
from plait.data.fingerprint import fingerprint, media_columns
from plait.data.order import ResumableLoader
from plait.data.prepare import stream_datasets, table_datasets
from plait.data.processors import (
    BinaryTarget,
    InputProcessor,
    MultilabelTarget,
    TargetProcessor,
)
from plait.data.schema import resolve_config
from plait.data.streaming import (
    StreamingDataset,
    is_shard_source,
    open_shards,
    stream_loader,
)
from plait.data.table import read_table
from plait.distributed import device_options, global_rank, leave_process_group
from plait.ensemble import NEURAL, beside_network, fit_ensemble, second_networks, servable
from plait.errors import ConfigError, DataError, PlaitError
from plait.evaluation.thresholds import BAGS, best_threshold, tune_thresholds
from plait.inference import outputs
from plait.network_folds import network_candidates, network_oof
from plait.output_paths import check_output_folder, table_inputs
from plait.predictor import Predictor
from plait.report import save_training_report
from plait.resume import (
    LAST,
    GracefulStop,
    ResumeCheckpoint,
    SafeCheckpointIO,
    check_same_run,
    find_checkpoint,
    remove_work,
    start_work,
    work_dir,
)
from plait.runfolder import staging, write_run
from plait.safe_load import load_checkpoint
from plait.system import MultimodalSystem

console = Console(stderr=True)


def fit(
    data: str | Path | pd.DataFrame,
    label: str | list[str] | None = None,
    config: str | Path | dict[str, Any] | PlaitConfig | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    types: dict[str, str] | None = None,
    base_dir: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool = True,
    retrieval: list[str] | None = None,
    resume: str | Path | None = None,
    started: float | None = None,
    callbacks: list[Any] | None = None,
) -> Predictor:
    """Train on a table and return a Predictor for the written run folder.

    data:   CSV / Parquet / JSONL path, or a DataFrame (media paths then resolve
            against `base_dir`, default the working directory).
    label:  target column(s); more may be declared under `outputs:` in the config.
    config: YAML path, dict or PlaitConfig; anything left out is inferred.
    types:  column → type overrides, as `--type COL=TYPE` on the command line.
    retrieval: two or more image/text/audio columns to embed into one space (a
            contrastive task named "retrieval"), as `--retrieval A,B`.
    resume: continue an interrupted run from its last checkpoint: the run folder it
            was writing (its `out`) or a checkpoint file (plait.resume).
    started: time.monotonic() when the command began (the CLI's start, so that
            trainer.time_limit covers importing torch too); default: now.
    callbacks: extra Lightning callbacks for the network's training (plait.tune's
            pruning callback).
    """
    started = time.monotonic() if started is None else started  # a time limit covers the whole call
    cfg = as_config(config)
    if retrieval:
        if any(o.name == "retrieval" for o in cfg.outputs):
            raise ConfigError("the config already has an output named 'retrieval'; drop --retrieval")
        cfg.outputs.append(OutputConfig(name="retrieval", type="retrieval", columns=list(retrieval)))
    cfg = apply_overrides(cfg, epochs=epochs, seed=seed)  # validated like the config
    chosen_candidates = cfg.candidates != "auto"  # the user's list: a candidate that cannot serve is an error
    _quiet_lightning()
    rank = global_rank(cfg.trainer)  # 0 unless this is another process of a DDP run
    labels = [label] if isinstance(label, str) else list(label or [])
    shards = open_shards(data, base_dir) if is_shard_source(data) else None
    if shards is not None:  # bigger than memory: types and processors from a sample
        frame, taken = shards.sample(cfg.trainer.stream_sample_rows, cfg.seed)
    else:
        table = read_table(data, base_dir)  # type: ignore[arg-type]
        frame = table.frame
    cfg = resolve_config(frame, cfg, labels, types)  # every component checked here
    resume_from = None
    if resume is not None:
        resume_from, out_dir = find_checkpoint(Path(resume), Path(out) if out else None)
    else:
        out_dir = Path(out) if out else default_run_dir(labels or [o.name for o in cfg.outputs])
    # Before the slow part (staging checks again): never over the data, never over a
    # folder Plait did not write.
    inputs = table_inputs(data, frame, None if shards else table.base_dir, media_columns(cfg))
    if rank == 0:
        check_output_folder(out_dir, overwrite, inputs)
    work = work_dir(out_dir)
    if rank == 0 and resume is None and (work / LAST).exists() and not overwrite:
        raise PlaitError(
            f"a run into {out_dir} was interrupted; continue it with --resume {out_dir}, "
            "or pass --overwrite to start over"
        )
    datasets: dict[str, TableDataset | StreamingDataset]
    if shards is not None:
        processors, targets, datasets = stream_datasets(cfg, shards, frame, taken, set(types or {}))
        shown = f"{shards.rows} rows in {len(shards.paths)} shard(s); types from a sample of {len(frame)}"
    else:
        processors, targets, datasets = table_datasets(cfg, frame, table.base_dir)
        shown = f"{len(frame)} rows"
    verbose = verbose and rank == 0  # one process speaks for a DDP run
    cfg.candidates = servable(
        cfg.candidates, processors, targets, shards is not None, chosen_candidates, cfg.fusion.name
    )
    if not all(ds.n_rows for ds in datasets.values()):
        raise DataError("no rows left to train or validate on after skipping bad rows")
    # Rank 0 alone writes the run: it fingerprints the data and, resuming, checks the
    # interrupted run's config, data and checkpoint, all before the schema is shown.
    data_hash: dict[str, Any] = {}
    if rank == 0:
        data_hash = shards.fingerprint() if shards else fingerprint(frame, table.base_dir, media_columns(cfg))
        if resume_from is not None:
            check_same_run(work, cfg.to_yaml(), data_hash)
            load_checkpoint(resume_from)  # refused, never executed, if it holds more than tensors
    # Everything is validated by now, so the schema is not followed by an error.
    if verbose:
        show_schema(cfg, frame, unusable_cells(datasets.values()), shown)
    bad = sum(len(ds.bad_rows) for ds in datasets.values())
    if bad and verbose:
        what = "skipped" if cfg.on_bad_row == "skip" else "kept with the unusable cells treated as missing"
        console.print(f"[yellow]{bad} row(s) with an unreadable file or a bad number {what}", soft_wrap=True)

    generates = any(o.type == "text" for o in cfg.outputs)
    reserve = (TEXT_RESERVE_SHARE if generates else RESERVE_SHARE) + (
        MEMBERS_SHARE if beside_network(cfg.candidates) else 0.0
    )
    budget = Budget(started, cfg.trainer.time_limit, reserve_share=reserve)
    run = _Run(work, resume_from, f"plait train ... --resume {out_dir}", budget, list(callbacks or []))
    if rank != 0:  # DDP: this process trains beside rank 0, which alone writes the run folder
        with tempfile.TemporaryDirectory(prefix="plait-rank-") as tmp:
            predictor, _ = _train(cfg, processors, targets, datasets, Path(tmp), verbose, run)
        return predictor  # its run_dir stays None
    if resume_from is None:
        remove_work(work)  # a stale one, with --overwrite
        start_work(work, out_dir, cfg.to_yaml(), data_hash)
    try:
        with staging(out_dir, overwrite, inputs) as tmp:
            predictor, metrics = _train(cfg, processors, targets, datasets, tmp, verbose, run)
            write_run(tmp, cfg, processors, targets, metrics, data_hash)
            save_training_report(tmp, cfg, frame, datasets, predictor.run, shown_as=out_dir)  # never raises
    except BaseException:
        if not (work / LAST).exists():  # failed before its first checkpoint: nothing to resume
            shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)  # only now: until the rename it is the way back
    predictor.run.run_dir = out_dir
    return predictor


@dataclass
class _Run:
    """Where a run keeps its checkpoints (plait.resume) and where it resumes from."""

    work: Path
    resume_from: Path | None
    resume_hint: str
    budget: Budget
    callbacks: list[Any] = field(default_factory=list)  # extra Lightning callbacks


def default_run_dir(labels: list[str]) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{'-'.join(labels)}-{stamp}"


def build_system(
    cfg: ResolvedConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    val_rows: int,
) -> MultimodalSystem:
    """The LightningModule that trains a run's model (seeded, so its weights repeat)."""
    L.seed_everything(cfg.seed, verbose=False)
    return MultimodalSystem(
        build_model(cfg, processors, targets),
        target_types={t: p.kind for t, p in targets.items()},
        num_classes={t: p.num_classes for t, p in targets.items()},
        loss_weights={o.name: o.loss_weight for o in cfg.outputs},
        trainer_config=cfg.trainer,
        towers={o.name: o.columns for o in cfg.outputs if o.type == "retrieval"},
        val_rows=val_rows,
    )


def _train(
    cfg: ResolvedConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    datasets: dict[str, TableDataset] | dict[str, StreamingDataset],
    folder: Path,
    verbose: bool,
    run: _Run,
) -> tuple[Predictor, dict[str, Any]]:
    tc = cfg.trainer
    if isinstance(tc.modality_dropout, dict):
        unknown = sorted(set(tc.modality_dropout) - set(processors))
        if unknown:
            raise ConfigError(
                f"trainer.modality_dropout names unknown input(s) {', '.join(unknown)}; "
                f"inputs: {', '.join(processors)}"
            )
    system = build_system(cfg, processors, targets, datasets["val"].n_rows)
    work = run.work  # checkpoints and raw logs, beside the run folder until it is complete
    if run.resume_from is not None and (work / "metrics.csv").exists():
        # Lightning's logger starts its file afresh: keep the epochs logged before.
        _append_log(work / "metrics.csv", work / EARLIER_LOG)
    checkpoint = ModelCheckpoint(
        dirpath=work / "checkpoints", monitor=system.monitor, mode=system.monitor_mode, save_weights_only=True
    )
    timer = EpochTimer()
    last = ResumeCheckpoint(work / LAST, tc.checkpoint_every_n_steps)
    stop = GracefulStop(last, run.resume_hint)
    early = EarlyStopping(
        system.monitor, patience=tc.patience, min_delta=tc.min_delta, mode=system.monitor_mode
    )
    callbacks: list[Any] = [checkpoint, early, timer, stop, last, *run.callbacks]
    max_time = run.budget.training_seconds()  # None without a limit
    if verbose and tc.progress:
        callbacks.append(BudgetBar(run.budget, refresh_rate=20))
    _quiet_lightning()
    processes = tc.num_nodes * (tc.devices if isinstance(tc.devices, int) else 1)  # DDP shards each epoch
    trainer = L.Trainer(
        **device_options(tc),
        max_epochs=tc.epochs,
        max_time=None if max_time is None else timedelta(seconds=max_time),
        gradient_clip_val=tc.gradient_clip,
        callbacks=callbacks,
        plugins=[SafeCheckpointIO()],
        logger=CSVLogger(work, name="", version=""),
        default_root_dir=work,
        enable_progress_bar=verbose and tc.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic="warn",
        log_every_n_steps=max(1, min(50, datasets["train"].n_rows // (tc.batch_size * processes))),
    )
    pin = isinstance(trainer.accelerator, CUDAAccelerator)  # page-locked batches copy faster to a GPU
    train_loader, val_loader = (
        _loader(datasets[p], tc, p == "train", pin, cfg.seed, resumable=trainer.world_size == 1)
        for p in ("train", "val")
    )
    if isinstance(train_loader, ResumableLoader):
        last.loader = train_loader  # its position travels in last.ckpt
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Experiment logs directory .* exists and is not empty.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
        # Frozen pretrained backbones are kept in eval mode on purpose.
        warnings.filterwarnings("ignore", r".*module\(s\) in eval mode.*")
        try:
            stop.install()
            trainer.fit(system, train_loader, val_loader, ckpt_path=run.resume_from, weights_only=True)
        except BackendCompilerFailed as err:  # trainer.compile on this machine
            problem = " ".join(str(err).split("\n\n")[0].split())[:300]
            raise ConfigError(
                f"trainer.compile: torch.compile cannot run here ({problem}); train without --compile"
            ) from None
        finally:
            stop.uninstall()
    train_seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    per_epoch = trainer.num_training_batches  # inf for a stream of unknown length
    if max_time is not None and trainer.global_step < per_epoch and run.resume_from is None:
        # The limit stopped the first pass over the data (Lightning still validates then).
        raise ConfigError(run.budget.too_short(train_seconds, trainer.global_step, per_epoch))
    # Rank 0 wrote the checkpoint; every process of this machine (or of a shared file
    # system) loads it, and rank 0 deletes it only after that.
    if checkpoint.best_model_path and Path(checkpoint.best_model_path).is_file():
        state = load_checkpoint(checkpoint.best_model_path)
        system.load_state_dict(state["state_dict"])
    trainer.strategy.barrier("plait-best-loaded")
    leave_process_group()  # what follows is rank 0's alone
    # The plain module (never the compiled callable), in the default memory format:
    # safetensors stores only contiguous tensors, and predictions expect it.
    model = system.model.cpu().eval().to(memory_format=torch.contiguous_format)
    if not trainer.is_global_zero:
        return Predictor(cfg, processors, targets, model), {}
    save_model(model, str(folder / "model.safetensors"))
    # safetensors writes its file private (0600); it is as readable as the run's other files.
    (folder / "model.safetensors").chmod(0o666 & ~_umask())
    raw_logs = [p for p in (work / EARLIER_LOG, work / "metrics.csv") if p.exists()]
    if raw_logs:
        _write_epoch_log(raw_logs, folder / "log.csv")
    # ddp_spawn trains in child processes and hands back no epoch count; the log has it.
    epochs = trainer.current_epoch or _logged_epochs(folder / "log.csv")

    ensemble = None
    if beside_network(cfg.candidates):  # in-memory tables only (servable)
        loaders = {p: make_loader(datasets[p], tc.eval_batch_size, shuffle=False) for p in ("train", "val")}
        deadline = run.budget.members_deadline()
        neural_oof, networks = None, {}
        if NEURAL in cfg.candidates and processes == 1:
            build = partial(build_system, cfg, processors, targets)
            neural_oof = network_oof(build, cfg, targets, datasets["train"], train_seconds, deadline)
        if second_networks(cfg.candidates) and processes == 1:
            networks = network_candidates(
                second_networks(cfg.candidates),
                cfg,
                lambda other, val_rows: build_system(other, processors, targets, val_rows),
                targets,
                datasets,  # type: ignore[arg-type]  # in-memory tables only (servable)
                train_seconds,
                deadline,
                with_oof=neural_oof is not None,
            )
        # With no limit, bagging a member may take as long as the network took, or a minute.
        bag_seconds = max(60.0, train_seconds)
        ensemble = fit_ensemble(
            cfg.candidates,
            processors,
            targets,
            loaders,
            model,
            cfg.seed,
            deadline,
            bag_seconds,
            neural_oof,
            networks,
            cfg.lightgbm,
        )
        ensemble.save(folder)
    predictor = Predictor(cfg, processors, targets, model, ensemble=ensemble)
    thresholds = _tune_thresholds(predictor, datasets["val"], ensemble.held_out if ensemble else {})
    metrics: dict[str, Any] = {"validation": predictor.evaluate_dataset(datasets["val"])}
    if "test" in datasets:
        metrics["test"] = predictor.evaluate_dataset(datasets["test"])
    metrics.update(
        epochs=epochs,
        best_epoch=_best_epoch(checkpoint.best_model_path),
        train_seconds=round(train_seconds, 2),
        epoch_seconds=[round(t, 3) for t in timer.seconds],
        train_samples_per_second=round(epochs * datasets["train"].n_rows / train_seconds, 1),
        rows={k: v.n_rows for k, v in datasets.items()},
    )
    if thresholds:
        metrics["thresholds"] = thresholds
    if ensemble is not None:  # each candidate's validation score, times and weight
        metrics["leaderboard"] = ensemble.leaderboard
    return predictor, metrics


def _loader(
    dataset: TableDataset | StreamingDataset,
    tc: TrainerConfig,
    training: bool,
    pin_memory: bool = False,
    seed: int = 0,
    resumable: bool = True,
) -> DataLoader:
    """A streamed part brings its own loader (its workers read their own shards); the
    training loader's order is resumable state (plait.data.order)."""
    if isinstance(dataset, StreamingDataset):
        return stream_loader(dataset)
    batch_size = tc.batch_size if training else tc.eval_batch_size
    return make_loader(
        dataset,
        batch_size,
        training,
        num_workers=tc.num_workers,
        pin_memory=pin_memory,
        seed=seed,
        resumable=resumable,
    )


def _tune_thresholds(
    predictor: Predictor, val: TableDataset, held_out: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Set the decision thresholds (saved with the targets' processors): each multilabel
    label's to the one maximising its F1 on the validation rows; each binary target's to
    its `threshold:`, or to the one maximising the run's `metric:` on `held_out`
    predictions (the ensemble's out-of-fold ones, plait.ensemble) or else the validation
    rows'. Returns {target: {label or positive class: threshold}}. Validation metrics are
    measured with them, so they are optimistic; test ones are not."""
    tuned = {t: p for t, p in predictor.targets.items() if isinstance(p, (MultilabelTarget, BinaryTarget))}
    if not tuned:
        return {}
    outputs_cfg = {o.name: o for o in predictor.config.outputs}
    metric = "accuracy" if predictor.config.metric == "auto" else predictor.config.metric
    needed = [t for t, p in tuned.items() if isinstance(p, MultilabelTarget) or t not in held_out]
    preds, truth = outputs(predictor.run, val) if needed else ({}, {})
    for t, proc in tuned.items():
        if isinstance(proc, MultilabelTarget):
            proc.thresholds_ = tune_thresholds(preds[t], truth[t])
        elif outputs_cfg[t].threshold != "auto":
            proc.threshold_ = float(outputs_cfg[t].threshold)
        else:
            p, y = held_out[t] if t in held_out else (preds[t].double().numpy(), truth[t].numpy())
            positive = np.asarray(y) > 0.5
            proc.threshold_ = best_threshold(np.asarray(p), positive, metric, BAGS, predictor.config.seed)
    return {
        t: dict(zip(p.classes_, p.thresholds_, strict=True))
        if isinstance(p, MultilabelTarget)
        else {str(p.classes_[1]): p.threshold_}
        for t, p in tuned.items()
    }


class EpochTimer(L.Callback):
    """Wall seconds of each training epoch (its validation excluded), for metrics.json."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = self._val_start = self._val = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start, self._val = time.perf_counter(), 0.0

    # Lightning validates inside the training epoch; that time is taken out.
    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._val += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start - self._val)


def _best_epoch(path: str) -> int | None:
    # ModelCheckpoint names files "epoch=E-step=S.ckpt".
    name = Path(path).stem
    return int(name.split("-")[0].split("=")[1]) + 1 if name.startswith("epoch=") else None


def _logged_epochs(log: Path) -> int:
    return len(pd.read_csv(log)) if log.exists() else 0


def _write_epoch_log(raws: list[Path], dest: Path) -> None:
    """Lightning's CSV has one row per logging call; keep one row per epoch. A resumed
    run's log comes in two parts: before the interruption and after."""
    log = pd.concat([pd.read_csv(raw) for raw in raws], ignore_index=True)
    log = log.drop(columns=[c for c in ("step",) if c in log]).groupby("epoch").first().reset_index()
    log["epoch"] += 1
    log.to_csv(dest, index=False)


EARLIER_LOG = "metrics-before-resume.csv"


def _append_log(raw: Path, earlier: Path) -> None:
    frames = [pd.read_csv(p) for p in (earlier, raw) if p.exists() and p.stat().st_size]
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(earlier, index=False)
    raw.unlink()


def _umask() -> int:
    """The process's umask (reading it means setting it: put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def show_schema(
    cfg: ResolvedConfig, frame: pd.DataFrame, unusable: dict[str, int], title: str | None = None
) -> None:
    """The resolved columns; "missing" counts empty cells and the `unusable` ones per column."""
    table = RichTable(title=title or f"{len(frame)} rows", title_justify="left")
    for header in ("column", "role", "type", "encoder (group) / head", "missing"):
        table.add_column(header)
    for col in cfg.inputs:
        # A video's sound track reads the clip's column (clips without sound are not counted).
        missing = missing_rate(frame[col.sound_of or col.name], unusable.get(col.name, 0))
        group = f" ({col.group})" if col.group != col.name else ""
        table.add_row(col.name, "input", col.type, col.encoder.name + group, f"{missing:.0%}")
    for out in cfg.outputs:
        table.add_row(out.name, "target", out.type, out.head.name, "")
    for name in cfg.id_columns:
        table.add_row(name, "id (kept)", "", "", "")
    if cfg.split_column:
        table.add_row(cfg.split_column, "split", "", "", "")
    console.print(table)
    tc = cfg.trainer
    limit = f", time limit {format_seconds(tc.time_limit)}" if tc.time_limit else ""
    members = beside_network(cfg.candidates)
    weighted = f"; the network weighted with {', '.join(members)} (plait leaderboard)" if members else ""
    console.print(
        f"preset: {cfg.preset}; fusion: {cfg.fusion.name}; up to {tc.epochs} epochs (early stopping "
        f"after {tc.patience} without improvement), {tc.val_fraction:.0%} of training rows for "
        f"validation{limit}{weighted}",
        soft_wrap=True,
    )

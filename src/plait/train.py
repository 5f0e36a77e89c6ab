"""fit(table, label, config) → a run folder and a Predictor."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.table import Table as RichTable
from safetensors.torch import save_model

from plait.build import build_model, encoder_spec, head_spec, validate_components
from plait.config import InputConfig, OutputConfig, PlaitConfig, load_config, parse_config
from plait.data.datamodule import make_loader, split_frame
from plait.data.dataset import TableDataset
from plait.data.processors import (
    INPUT_PROCESSORS,
    TARGET_PROCESSORS,
    FeatureProcessor,
    InputProcessor,
    MultilabelTarget,
    PairTarget,
    TabularProcessor,
    TargetProcessor,
)
from plait.data.processors.base import is_empty
from plait.data.processors.targets import check_no_missing
from plait.data.schema import input_units, is_tabular_group, resolve_config
from plait.data.table import read_table
from plait.distributed import device_options, global_rank, leave_process_group
from plait.encoders import ENCODERS
from plait.errors import ConfigError, DataError, PlaitError
from plait.evaluation.thresholds import tune_thresholds
from plait.predictor import Predictor
from plait.report import save_training_report
from plait.runfolder import staging, write_run
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
) -> Predictor:
    """Train on a table and return a Predictor for the written run folder.

    data:   CSV / Parquet / JSONL path, or a DataFrame (media paths then resolve
            against `base_dir`, default the working directory).
    label:  target column(s); more may be declared under `outputs:` in the config.
    config: YAML path, dict or PlaitConfig; anything left out is inferred.
    types:  column → type overrides, as `--type COL=TYPE` on the command line.
    retrieval: two or more image/text/audio columns to embed into one space (a
            contrastive task named "retrieval"), as `--retrieval A,B`.
    """
    cfg = load_config(config) if isinstance(config, (str, Path)) else parse_config(config)
    if retrieval:
        if any(o.name == "retrieval" for o in cfg.outputs):
            raise ConfigError("the config already has an output named 'retrieval'; drop --retrieval")
        cfg.outputs.append(OutputConfig(name="retrieval", type="retrieval", columns=list(retrieval)))
    if epochs is not None:
        cfg.trainer.epochs = epochs
    if seed is not None:
        cfg.seed = seed
    _quiet_lightning()
    rank = global_rank(cfg.trainer)  # 0 unless this is another process of a DDP run
    table = read_table(data, base_dir)
    labels = [label] if isinstance(label, str) else list(label or [])
    cfg = resolve_config(table.frame, cfg, labels, types)
    validate_components(cfg)
    frame = table.frame
    for out_cfg in cfg.outputs:  # whole-table row numbers, before splitting
        if out_cfg.type != "retrieval":  # a row may lack one tower (that pair sits out)
            check_no_missing(frame[out_cfg.name], out_cfg.name)
    out_dir = Path(out) if out else default_run_dir(labels or [o.name for o in cfg.outputs])
    if rank == 0 and out_dir.exists() and not overwrite:  # fail before the slow part; staging checks again
        raise PlaitError(f"output folder {out_dir} already exists; choose another --out or pass --overwrite")
    train_df, val_df, test_df = split_frame(
        frame, cfg.split_column, cfg.trainer.val_fraction, cfg.seed, split_group(cfg)
    )
    processors, targets = fit_processors(cfg, train_df, table.base_dir, all_labels=frame)
    datasets = {
        name: TableDataset.from_frame(
            part,
            processors,
            targets,
            training=name == "train",
            base_dir=table.base_dir,
            on_bad_row=cfg.on_bad_row,
        )
        for name, part in (("train", train_df), ("val", val_df), ("test", test_df))
        if len(part)
    }
    verbose = verbose and rank == 0  # one process speaks for a DDP run
    # Everything is validated by now, so the schema is not followed by an error.
    if verbose:
        show_schema(cfg, frame)
    bad = sum(len(ds.bad_rows) for ds in datasets.values())
    if bad and verbose:
        what = "skipped" if cfg.on_bad_row == "skip" else "kept with the unusable cells treated as missing"
        console.print(f"[yellow]{bad} row(s) with an unreadable file or a bad number {what}")
    if not all(len(ds) for ds in datasets.values()):
        raise DataError("no rows left to train or validate on after skipping bad rows")

    if rank != 0:  # DDP: this process trains beside rank 0, which alone writes the run folder
        with tempfile.TemporaryDirectory(prefix="plait-rank-") as tmp:
            predictor, _ = _train(cfg, processors, targets, datasets, Path(tmp), verbose)
        return predictor  # its run_dir stays None
    with staging(out_dir, overwrite) as tmp:
        predictor, metrics = _train(cfg, processors, targets, datasets, tmp, verbose)
        write_run(tmp, cfg, processors, targets, metrics)
        save_training_report(tmp, cfg, frame, datasets, predictor, shown_as=out_dir)  # never raises
    predictor.run_dir = out_dir
    return predictor


def split_group(cfg: PlaitConfig) -> str | None:
    """Retrieval: validation rows are carved by item (the first tower's cell), so no
    image is both trained on and used to stop training."""
    return next((o.columns[0] for o in cfg.outputs if o.type == "retrieval"), None)


def default_run_dir(labels: list[str]) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{'-'.join(labels)}-{stamp}"


def fit_processors(
    cfg: PlaitConfig, train: pd.DataFrame, base_dir: Path, all_labels: pd.DataFrame | None = None
) -> tuple[dict[str, InputProcessor], dict[str, TargetProcessor]]:
    """Fit one processor per input on the training split only; the columns of a media
    group share one processor (one vocabulary, one normalisation) as they share weights.

    Class lists come from `all_labels` (every labelled row) when given: a rare class
    that happens to fall only in the validation split still gets an output, and no
    input statistics leak. Numeric targets are scaled with training statistics.
    """
    processors: dict[str, InputProcessor] = {}
    by_group: dict[str, InputProcessor] = {}
    for key, members in input_units(cfg).items():
        group = members[0].group
        if group not in by_group:
            by_group[group] = _fit_input(cfg, train, base_dir, key, members)  # type: ignore[index]
        processors[key] = by_group[group]  # type: ignore[index]
    labels = train if all_labels is None else all_labels
    targets = {}
    for o in cfg.outputs:
        proc = make_target(o)
        targets[o.name] = proc.fit(proc.select(train if o.type == "numeric" else labels, o.name), o.name)
        if isinstance(proc, MultilabelTarget):  # label rates (for pos_weight) from training rows only
            proc.fit_frequencies(train[o.name], o.name)
    return processors, targets


def make_target(out: OutputConfig) -> TargetProcessor:
    """An unfitted target processor with the output's options."""
    if out.type == "retrieval":
        return PairTarget(out.columns)
    return TARGET_PROCESSORS[out.type].create(out.preprocessing, out.name)  # type: ignore[index]


def _fit_input(
    cfg: PlaitConfig, train: pd.DataFrame, base_dir: Path, key: str, members: list[InputConfig]
) -> InputProcessor:
    if is_tabular_group(key, members):  # one processor, many columns
        numeric = {m.name: m.preprocessing for m in members if m.type == "numeric"}
        category = {m.name: m.preprocessing for m in members if m.type == "category"}
        proc: InputProcessor = TabularProcessor(numeric, category)
        return proc.fit(proc.select(train, key), key, on_bad_row=cfg.on_bad_row)
    group = [c for c in cfg.inputs if c.group == members[0].group]
    options: dict[str, Any] = {}  # the group's preprocessing: the union of its columns' settings
    for col in group:
        for name, value in col.preprocessing.items():
            if options.setdefault(name, value) != value:
                raise ConfigError(
                    f"the columns of group {col.group!r} share an encoder but set {name} to "
                    f"{options[name]!r} and {value!r}; give them the same, or separate groups"
                )
    proc = _input_processor(members[0], options, key)
    proc.base_dir = base_dir
    values = pd.concat([train[c.name] for c in group])
    # Unreadable files are skipped when fitting statistics; transforming each column
    # afterwards reports them with their own column name (or counts them).
    on_bad = cfg.on_bad_row if len(group) == 1 else "missing"
    return proc.fit(values, key, on_bad_row=on_bad)


def _input_processor(column: InputConfig, options: dict[str, Any], key: str) -> InputProcessor:
    """The processor a column's encoder needs: its type's, or the one a pretrained
    encoder asks for (its tokenizer, its image size and normalisation, cached features)."""
    spec = encoder_spec(column.type, column.encoder)  # type: ignore[arg-type]
    wants = getattr(ENCODERS.get(spec.name).builder, "preprocessing", None)
    if wants is None:
        return INPUT_PROCESSORS[column.type].create(options, key)  # type: ignore[index]
    kind, defaults = wants(spec.params)
    if kind == "features":  # the user's options refine the base preprocessing
        defaults["base"]["params"] = {**defaults["base"]["params"], **options}
        return FeatureProcessor.create(defaults, key)
    return INPUT_PROCESSORS[kind].create({**defaults, **options}, key)


def _train(
    cfg: PlaitConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    datasets: dict[str, TableDataset],
    folder: Path,
    verbose: bool,
) -> tuple[Predictor, dict[str, Any]]:
    tc = cfg.trainer
    if isinstance(tc.modality_dropout, dict):
        unknown = sorted(set(tc.modality_dropout) - set(processors))
        if unknown:
            raise ConfigError(
                f"trainer.modality_dropout names unknown input(s) {', '.join(unknown)}; "
                f"inputs: {', '.join(processors)}"
            )
    L.seed_everything(cfg.seed, verbose=False)
    model = build_model(cfg, processors, targets)
    system = MultimodalSystem(
        model,
        target_types={t: p.kind for t, p in targets.items()},
        num_classes={t: p.num_classes for t, p in targets.items()},
        loss_weights={o.name: o.loss_weight for o in cfg.outputs},
        trainer_config=tc,
        towers={o.name: o.columns for o in cfg.outputs if o.type == "retrieval"},
    )
    work = folder / "_work"  # checkpoints and raw logs; removed before the run is final
    checkpoint = ModelCheckpoint(dirpath=work / "checkpoints", monitor="val_loss", save_weights_only=True)
    timer = EpochTimer()
    callbacks: list[Any] = [checkpoint, EarlyStopping("val_loss", patience=tc.patience), timer]
    if verbose and tc.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=20))
    _quiet_lightning()
    processes = tc.num_nodes * (tc.devices if isinstance(tc.devices, int) else 1)  # DDP shards each epoch
    trainer = L.Trainer(
        **device_options(tc),
        max_epochs=tc.epochs,
        gradient_clip_val=tc.gradient_clip,
        callbacks=callbacks,
        logger=CSVLogger(work, name="", version=""),
        default_root_dir=work,
        enable_progress_bar=verbose and tc.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic="warn",
        log_every_n_steps=max(1, min(50, len(datasets["train"]) // (tc.batch_size * processes))),
    )
    train_loader = make_loader(datasets["train"], tc.batch_size, shuffle=True, num_workers=tc.num_workers)
    val_loader = make_loader(datasets["val"], tc.eval_batch_size, shuffle=False, num_workers=tc.num_workers)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
        # Frozen pretrained backbones are kept in eval mode on purpose.
        warnings.filterwarnings("ignore", r".*module\(s\) in eval mode.*")
        trainer.fit(system, train_loader, val_loader)
    train_seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    # Rank 0 wrote the checkpoint; every process of this machine (or of a shared file
    # system) loads it, and rank 0 deletes it only after that.
    if checkpoint.best_model_path and Path(checkpoint.best_model_path).is_file():
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        system.load_state_dict(state["state_dict"])
    trainer.strategy.barrier("plait-best-loaded")
    leave_process_group()  # what follows is rank 0's alone
    model = system.model.cpu().eval()
    if not trainer.is_global_zero:
        return Predictor(cfg, processors, targets, model), {}
    save_model(model, str(folder / "model.safetensors"))
    if (work / "metrics.csv").exists():
        _write_epoch_log(work / "metrics.csv", folder / "log.csv")
    shutil.rmtree(work, ignore_errors=True)
    # ddp_spawn trains in child processes and hands back no epoch count; the log has it.
    epochs = trainer.current_epoch or _logged_epochs(folder / "log.csv")

    predictor = Predictor(cfg, processors, targets, model)
    thresholds = _tune_thresholds(predictor, datasets["val"])
    metrics: dict[str, Any] = {"validation": predictor.evaluate_dataset(datasets["val"])}
    if "test" in datasets:
        metrics["test"] = predictor.evaluate_dataset(datasets["test"])
    metrics.update(
        epochs=epochs,
        best_epoch=_best_epoch(checkpoint.best_model_path),
        train_seconds=round(train_seconds, 2),
        epoch_seconds=[round(t, 3) for t in timer.seconds],
        train_samples_per_second=round(epochs * len(datasets["train"]) / train_seconds, 1),
        rows={k: len(v) for k, v in datasets.items()},
    )
    if thresholds:
        metrics["thresholds"] = thresholds
    return predictor, metrics


def _tune_thresholds(predictor: Predictor, val: TableDataset) -> dict[str, dict[str, float]]:
    """Set each multilabel target's per-label thresholds to those maximising F1 on the
    validation rows (saved with its processor); returns {target: {label: threshold}}.
    Validation metrics are measured with them, so they are optimistic; test ones are not."""
    multilabel = {t: p for t, p in predictor.targets.items() if isinstance(p, MultilabelTarget)}
    if not multilabel:
        return {}
    preds, truth = predictor._outputs(val)
    for t, proc in multilabel.items():
        proc.thresholds_ = tune_thresholds(preds[t], truth[t])
    return {t: dict(zip(p.classes_, p.thresholds_, strict=True)) for t, p in multilabel.items()}


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


def _write_epoch_log(raw: Path, dest: Path) -> None:
    """Lightning's CSV has one row per logging call; keep one row per epoch."""
    log = pd.read_csv(raw)
    log = log.drop(columns=[c for c in ("step",) if c in log]).groupby("epoch").first().reset_index()
    log["epoch"] += 1
    log.to_csv(dest, index=False)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def show_schema(cfg: PlaitConfig, frame: pd.DataFrame) -> None:
    table = RichTable(title=f"{len(frame)} rows", title_justify="left")
    for header in ("column", "role", "type", "encoder (group) / head", "missing"):
        table.add_column(header)
    for col in cfg.inputs:
        missing = frame[col.name].map(is_empty).mean()
        encoder = encoder_spec(col.type, col.encoder).name  # type: ignore[arg-type]
        group = f" ({col.group})" if col.group != col.name else ""
        table.add_row(col.name, "input", col.type, encoder + group, f"{missing:.0%}")
    for out in cfg.outputs:
        table.add_row(out.name, "target", out.type, head_spec(out.type, out.head).name, "")  # type: ignore[arg-type]
    for name in cfg.id_columns:
        table.add_row(name, "id (kept)", "", "", "")
    if cfg.split_column:
        table.add_row(cfg.split_column, "split", "", "", "")
    console.print(table)
    console.print(f"fusion: {cfg.fusion.name}")

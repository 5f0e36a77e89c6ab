"""The inference layer: a loaded run, the dataset of a table or a shard folder for it,
and the model's outputs on a dataset. Predictor (load, predict, evaluate), training's
final evaluation, the analyses (explain, robustness, benchmark), the report, retrieval
and serving all predict through these functions, so none reaches into another's
private names.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model
from torch import Tensor

from plait.build import build_model
from plait.config import ComponentSpec, ResolvedConfig, apply_overrides
from plait.data.collate import Batch
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.processors import InputProcessor, PairTarget, TargetProcessor, TextTarget
from plait.data.processors.text_target import PAD
from plait.data.schema import check_columns
from plait.data.stream_order import IdColumns, check_shard_columns
from plait.data.streaming import (
    StreamingDataset,
    every_row,
    is_shard_source,
    open_shards,
    stream_loader,
    stream_workers,
)
from plait.data.table import read_table
from plait.ensemble import Ensemble
from plait.ensemble.ensemble import FILE as ENSEMBLE_FILE
from plait.errors import BadRowsWarning, ConfigError, DataError, RunFolderError
from plait.evaluation.generation import references, text_metrics
from plait.evaluation.metrics import TaskMetrics, flatten
from plait.evaluation.retrieval import retrieval_metrics
from plait.evaluation.thresholds import decision_thresholds
from plait.model import MultimodalModel
from plait.runfolder import check_weights, read_run, verify_checksum

Data = str | Path | pd.DataFrame


@dataclass
class Run:
    """A trained model with what it needs to read tables: its resolved config, fitted
    input and target processors, the network in eval mode and, when other candidates
    were weighted in (plait.ensemble), the ensemble its predictions go through."""

    config: ResolvedConfig
    processors: dict[str, InputProcessor]
    targets: dict[str, TargetProcessor]
    model: MultimodalModel
    run_dir: Path | None = None
    ensemble: Ensemble | None = None

    def __post_init__(self) -> None:
        self.model.eval()

    def predict(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Activated outputs per target for one batch: the network's, or the ensemble's."""
        out = self.model.predict(inputs, present)
        return out if self.ensemble is None else self.ensemble.combine(out, inputs, present)


def load_run(run_dir: str | Path, on_bad_row: str | None = None) -> Run:
    """The run in `run_dir`. `on_bad_row` (error, missing, skip) replaces the run's
    setting for every table read through it (`--on-bad-row`)."""
    run_dir = Path(run_dir)
    config, processors, targets = read_run(run_dir)
    config = apply_overrides(config, on_bad_row=on_bad_row)
    try:
        model = build_model(config, processors, targets)
    except (ConfigError, KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise RunFolderError(
            f"{run_dir / 'config.yaml'} and processors.json do not fit together: "
            f"{' '.join(str(err).split())[:200] or type(err).__name__}"
        ) from None
    check_weights(run_dir / "model.safetensors", model)
    try:
        load_model(model, str(run_dir / "model.safetensors"), strict=True)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise RunFolderError(
            f"{run_dir / 'model.safetensors'} is damaged or does not match config.yaml: "
            f"{str(err).splitlines()[0][:200]}"
        ) from None
    verify_checksum(run_dir, "model.safetensors")  # same shapes, other values
    return Run(
        config, processors, targets, model, run_dir, load_ensemble(run_dir, config, processors, targets)
    )


def load_ensemble(
    run_dir: Path,
    config: ResolvedConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
) -> Ensemble | None:
    """The run's ensemble (None: the network alone); a damaged one is a RunFolderError."""
    path = run_dir / ENSEMBLE_FILE
    if not path.is_file():
        return None
    verify_checksum(run_dir, ENSEMBLE_FILE)
    for member in sorted((run_dir / "members").glob("*")):
        verify_checksum(run_dir, member.relative_to(run_dir).as_posix())
    try:
        return Ensemble.load(run_dir, processors, targets, partial(_with_fusion, config, processors, targets))
    except ConfigError as err:  # LightGBM not installed
        raise RunFolderError(f"{path}: {err}") from None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
    ) as err:
        raise RunFolderError(
            f"{path} or a member it names is damaged: {' '.join(str(err).split())[:200]}"
        ) from None


def _with_fusion(
    config: ResolvedConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    fusion: dict,
) -> MultimodalModel:
    """The run's network built with another fusion (an ensemble's second network), untrained."""
    other = config.model_copy(update={"fusion": ComponentSpec.model_validate(fusion)})
    return build_model(other, processors, targets)


def is_stream(data: Data) -> bool:
    """Whether `data` is read as a stream of Parquet shards (a folder or fsspec URL)
    rather than one table in memory."""
    return not isinstance(data, pd.DataFrame) and is_shard_source(data)


def _on_bad_row(run: Run, with_targets: bool) -> str:
    on_bad = run.config.on_bad_row
    return "missing" if on_bad == "skip" and not with_targets else on_bad  # predictions keep every row


# -- one table in memory ------------------------------------------------------------------
def table_dataset(
    run: Run, data: Data, with_targets: bool, base_dir: str | Path | None = None
) -> tuple[pd.DataFrame, TableDataset]:
    """(the table, its dataset): every input column (and with `with_targets`, every
    label) checked, then transformed by the run's processors."""
    if is_stream(data):  # explain, robustness: they need every row at once
        raise DataError(
            f"{data} is a folder (or URL) of Parquet shards; this reads one table file "
            "(evaluate and predict stream shards)"
        )
    table = read_table(data, base_dir)
    for target in run.targets.values():  # box targets read their images' sizes
        if target.image_input() is not None:
            target.base_dir = table.base_dir  # type: ignore[attr-defined]
    needed = [c for key, p in run.processors.items() for c in p.source_columns(key)]
    check_columns(table.frame, dict.fromkeys(needed), "input", needed=True)
    if with_targets:
        labels = [c for t, p in run.targets.items() for c in p.source_columns(t)]
        check_columns(table.frame, dict.fromkeys(labels), "label", needed=True)
    dataset = TableDataset.from_frame(
        table.frame,
        run.processors,
        run.targets if with_targets else None,
        base_dir=table.base_dir,
        on_bad_row=_on_bad_row(run, with_targets),
        # Labelled tables (evaluate, explain, benchmark) come back; tables to predict
        # (the server's requests among them) are new each time and are not cached.
        cache=with_targets and run.config.cache,
    )
    if dataset.bad_rows:
        used = "evaluated" if with_targets else "predicted"  # evaluate, explain, robustness: evaluated
        what = "skipped" if dataset.skipped else f"{used} with those cells treated as missing"
        message = f"{len(dataset.bad_rows)} row(s) with an unusable cell {what}"
        warnings.warn(message, BadRowsWarning, stacklevel=3)
    return table.frame, dataset


@torch.inference_mode()
def outputs(
    run: Run, dataset: TableDataset | StreamingDataset, drop: Collection[str] = ()
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Activated predictions and targets per target, in row order. Inputs named in
    `drop` are removed through their presence masks (as if missing in every row)."""
    if isinstance(dataset, StreamingDataset):  # its own loader; targets come with the batches
        loader = stream_loader(dataset)
    else:
        loader = make_loader(dataset, run.config.trainer.eval_batch_size, shuffle=False)
    preds: dict[str, list[Tensor]] = {t: [] for t in run.targets}
    truth: dict[str, list[Tensor]] = {t: [] for t in dataset.targets}
    for batch in loader:
        present = {k: m & (k not in drop) for k, m in batch.present.items()}
        for t, out in run.predict(batch.inputs, present).items():
            preds[t].append(out)
        for t, values in batch.targets.items():
            truth[t].append(values)
    return {t: _concat(p) for t, p in preds.items()}, {t: _concat(v) for t, v in truth.items()}


def evaluate_dataset(run: Run, dataset: TableDataset, drop: Collection[str] = ()) -> dict[str, float]:
    """The metrics of every target on a labelled dataset (`drop`: inputs removed)."""
    preds, targets = outputs(run, dataset, drop)
    per_target = {}
    for t, proc in run.targets.items():
        if isinstance(proc, TextTarget):  # generated text against every reference
            texts = [dataset.target_texts[t][i] for i in dataset.keep.tolist()]
            refs = references(texts, dataset.input_groups())
            per_target[t] = text_metrics(proc.decode(preds[t]), refs)
            continue
        if isinstance(proc, PairTarget):  # embeddings: recall@k between the towers
            per_target[t] = retrieval_metrics(preds[t], targets[t], proc.towers_)
            continue
        metrics = TaskMetrics(proc.kind, proc.num_classes, decision_thresholds(proc))
        metrics.update(preds[t], targets[t])
        per_target[t] = metrics.compute()
    return flatten(per_target)


# -- streamed tables (a folder or URL of Parquet shards) ----------------------------------
def stream_dataset(
    run: Run, data: str | Path, with_targets: bool, base_dir: str | Path | None
) -> StreamingDataset:
    """Every row of a shard folder, in table order within each loader worker."""
    boxes = [t for t, p in run.targets.items() if p.image_input() is not None]
    if boxes:
        raise ConfigError(
            f"{', '.join(boxes)} (box targets) need(s) one table file, not a folder of Parquet shards"
        )
    shards = open_shards(data, base_dir)
    wanted = {"input": [c for key, p in run.processors.items() for c in p.source_columns(key)]}
    if with_targets:
        wanted["label"] = [c for t, p in run.targets.items() for c in p.source_columns(t)]
    else:  # the id columns of the first shard are written beside the predictions
        wanted["id"] = IdColumns(shards, run.config.id_columns).names
    check_shard_columns(shards, wanted)
    tc = run.config.trainer
    return StreamingDataset(
        shards,
        every_row(shards),
        run.processors,
        run.targets if with_targets else None,
        tc.eval_batch_size,
        on_bad_row=_on_bad_row(run, with_targets),
        buffer_rows=tc.stream_buffer_rows,
        workers=stream_workers(tc.num_workers),
        cache=with_targets and run.config.cache,
    )


@torch.inference_mode()
def evaluate_stream(run: Run, dataset: StreamingDataset) -> dict[str, float]:
    """The metrics of `evaluate_dataset`, updated batch by batch: memory holds a batch
    per worker and what the metrics keep (counts; every score for roc_auc, mean_ap)."""
    refused = [t for t, p in run.targets.items() if isinstance(p, (TextTarget, PairTarget))]
    if refused:
        raise ConfigError(
            f"evaluating {', '.join(refused)} (text or retrieval) needs one table file that fits "
            "in memory, not a folder of Parquet shards"
        )
    metrics = {t: TaskMetrics(p.kind, p.num_classes, decision_thresholds(p)) for t, p in run.targets.items()}
    seen, unusable = 0, 0
    for batch in stream_loader(dataset):
        for t, out in run.predict(batch.inputs, batch.present).items():
            metrics[t].update(out, batch.targets[t])
        seen += len(batch)
        unusable += _unusable(batch)
    if not seen:
        raise DataError(f"no rows left to evaluate in {dataset.shards.source} after skipping bad rows")
    # Skipped rows are the ones missing from the count; rows kept with a cell treated
    # as missing come marked in their batches (from whichever loader worker).
    skip = run.config.on_bad_row == "skip"
    bad = dataset.n_rows - seen if skip else unusable
    if bad:
        what = "skipped" if skip else "evaluated with those cells treated as missing"
        warnings.warn(f"{bad} row(s) with an unusable cell {what}", BadRowsWarning, stacklevel=3)
    return flatten({t: m.compute() for t, m in metrics.items()})


def stream_outputs(
    run: Run, dataset: StreamingDataset, unusable: list[int]
) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    """(rows (B,), activated predictions per target) per batch, as the loader gives them;
    appends to `unusable` each batch's count of rows with a cell treated as missing."""
    for batch in stream_loader(dataset):
        with torch.inference_mode():
            preds = run.predict(batch.inputs, batch.present)
        assert batch.rows is not None  # streamed batches always carry their rows
        unusable.append(_unusable(batch))
        yield batch.rows, preds


def _concat(parts: list[Tensor]) -> Tensor:
    """Batches → one tensor; generated ids (B, L) are padded to the longest batch's L."""
    if parts and parts[0].dtype == torch.long and parts[0].dim() == 2:
        width = max(o.shape[1] for o in parts)
        parts = [torch.nn.functional.pad(o, (0, width - o.shape[1]), value=PAD) for o in parts]
    return torch.cat(parts)


def _unusable(batch: Batch) -> int:
    """Rows of a streamed batch kept with an unusable cell treated as missing."""
    return 0 if batch.unusable is None else int(batch.unusable.sum())

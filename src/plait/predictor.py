"""Predictor: a trained run, ready to predict and evaluate (used by the CLI and the API)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model
from torch import Tensor

from plait import retrieval
from plait.build import build_model
from plait.config import PlaitConfig, override_config
from plait.data.collate import Batch
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.processors import (
    InputProcessor,
    MultilabelTarget,
    PairTarget,
    TargetProcessor,
    TextTarget,
)
from plait.data.processors.text_target import PAD
from plait.data.schema import check_columns
from plait.data.stream_order import IdColumns, check_shard_columns, in_table_order
from plait.data.streaming import (
    StreamingDataset,
    every_row,
    is_shard_source,
    open_shards,
    stream_loader,
    stream_workers,
)
from plait.data.table import read_table
from plait.errors import BadRowsWarning, ConfigError, DataError, RunFolderError
from plait.evaluation import attribution, importance
from plait.evaluation.generation import references, text_metrics
from plait.evaluation.importance import Importance
from plait.evaluation.metrics import TaskMetrics, flatten
from plait.evaluation.retrieval import retrieval_metrics
from plait.evaluation.robustness import DEFAULT_LEVELS, Robustness, evaluate_robustness
from plait.heads.decoder import DecoderHead
from plait.model import MultimodalModel
from plait.output_paths import Inputs
from plait.outputs import prediction_frame
from plait.retrieval import Embeddings
from plait.runfolder import check_weights, read_run, staging, verify_checksum


class Predictor:
    def __init__(
        self,
        config: PlaitConfig,
        processors: dict[str, InputProcessor],
        targets: dict[str, TargetProcessor],
        model: MultimodalModel,
        run_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.processors = processors
        self.targets = targets
        self.model = model.eval()
        self.run_dir = run_dir

    @classmethod
    def load(cls, run_dir: str | Path, on_bad_row: str | None = None) -> Predictor:
        """The run in `run_dir`. `on_bad_row` (error, missing, skip) replaces the run's
        setting for every table this predictor reads (`--on-bad-row`)."""
        run_dir = Path(run_dir)
        config, processors, targets = read_run(run_dir)
        config = override_config(config, on_bad_row=on_bad_row)
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
        return cls(config, processors, targets, model, run_dir)

    # -- data -----------------------------------------------------------------
    def _dataset(
        self, data: str | Path | pd.DataFrame, with_targets: bool, base_dir: str | Path | None
    ) -> tuple[pd.DataFrame, TableDataset]:
        if is_shard_source(data):  # explain, robustness: they need every row at once
            raise DataError(
                f"{data} is a folder (or URL) of Parquet shards; this reads one table file "
                "(evaluate and predict stream shards)"
            )
        table = read_table(data, base_dir)
        needed = [c for key, p in self.processors.items() for c in p.source_columns(key)]
        check_columns(table.frame, dict.fromkeys(needed), "input", needed=True)
        if with_targets:
            labels = [c for t, p in self.targets.items() for c in p.source_columns(t)]
            check_columns(table.frame, dict.fromkeys(labels), "label", needed=True)
        on_bad = self.config.on_bad_row
        if on_bad == "skip" and not with_targets:
            on_bad = "missing"  # predictions keep one row per input row
        dataset = TableDataset.from_frame(
            table.frame,
            self.processors,
            self.targets if with_targets else None,
            base_dir=table.base_dir,
            on_bad_row=on_bad,
            # Labelled tables (evaluate, explain, benchmark) come back; tables to predict
            # (the server's requests among them) are new each time and are not cached.
            cache=with_targets and self.config.cache,
        )
        if dataset.bad_rows:
            used = "evaluated" if with_targets else "predicted"  # evaluate, explain, robustness: evaluated
            what = "skipped" if dataset.skipped else f"{used} with those cells treated as missing"
            message = f"{len(dataset.bad_rows)} row(s) with an unusable cell {what}"
            warnings.warn(message, BadRowsWarning, stacklevel=3)
        return table.frame, dataset

    @torch.inference_mode()
    def _outputs(
        self, dataset: TableDataset, drop: Collection[str] = ()
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Activated predictions and targets per target, in row order. Inputs named in
        `drop` are removed through their presence masks (as if missing in every row)."""
        if isinstance(dataset, StreamingDataset):  # its own loader; targets come with the batches
            loader = stream_loader(dataset)
        else:
            loader = make_loader(dataset, self.config.trainer.eval_batch_size, shuffle=False)
        preds: dict[str, list[Tensor]] = {t: [] for t in self.targets}
        truth: dict[str, list[Tensor]] = {t: [] for t in dataset.targets}
        for batch in loader:
            present = {k: m & (k not in drop) for k, m in batch.present.items()}
            for t, out in self.model.predict(batch.inputs, present).items():
                preds[t].append(out)
            for t, values in batch.targets.items():
                truth[t].append(values)
        return {t: _concat(p) for t, p in preds.items()}, {t: _concat(v) for t, v in truth.items()}

    # -- streamed tables (a folder or URL of Parquet shards) --------------------
    def _stream(self, data: str | Path, with_targets: bool, base_dir: str | Path | None) -> StreamingDataset:
        """Every row of a shard folder, in table order within each loader worker."""
        shards = open_shards(data, base_dir)
        wanted = {"input": [c for key, p in self.processors.items() for c in p.source_columns(key)]}
        if with_targets:
            wanted["label"] = [c for t, p in self.targets.items() for c in p.source_columns(t)]
        else:  # the id columns of the first shard are written beside the predictions
            wanted["id"] = IdColumns(shards, self.config.id_columns).names
        check_shard_columns(shards, wanted)
        on_bad = self.config.on_bad_row
        if on_bad == "skip" and not with_targets:
            on_bad = "missing"  # predictions keep one row per input row
        tc = self.config.trainer
        return StreamingDataset(
            shards,
            every_row(shards),
            self.processors,
            self.targets if with_targets else None,
            tc.eval_batch_size,
            on_bad_row=on_bad,
            buffer_rows=tc.stream_buffer_rows,
            workers=stream_workers(tc.num_workers),
            cache=with_targets and self.config.cache,
        )

    @torch.inference_mode()
    def _evaluate_stream(self, dataset: StreamingDataset) -> dict[str, float]:
        """The metrics of `evaluate_dataset`, updated batch by batch: memory holds a batch
        per worker and what the metrics keep (counts; every score for roc_auc, mean_ap)."""
        refused = [t for t, p in self.targets.items() if isinstance(p, (TextTarget, PairTarget))]
        if refused:
            raise ConfigError(
                f"evaluating {', '.join(refused)} (text or retrieval) needs one table file that fits "
                "in memory, not a folder of Parquet shards"
            )
        metrics = {
            t: TaskMetrics(p.kind, p.num_classes, p.thresholds_ if isinstance(p, MultilabelTarget) else None)
            for t, p in self.targets.items()
        }
        seen, unusable = 0, 0
        for batch in stream_loader(dataset):
            for t, out in self.model.predict(batch.inputs, batch.present).items():
                metrics[t].update(out, batch.targets[t])
            seen += len(batch)
            unusable += _unusable(batch)
        if not seen:
            raise DataError(f"no rows left to evaluate in {dataset.shards.source} after skipping bad rows")
        # Skipped rows are the ones missing from the count; rows kept with a cell treated
        # as missing come marked in their batches (from whichever loader worker).
        skip = self.config.on_bad_row == "skip"
        bad = dataset.n_rows - seen if skip else unusable
        if bad:
            what = "skipped" if skip else "evaluated with those cells treated as missing"
            warnings.warn(f"{bad} row(s) with an unusable cell {what}", BadRowsWarning, stacklevel=3)
        return flatten({t: m.compute() for t, m in metrics.items()})

    def _stream_outputs(
        self, dataset: StreamingDataset, unusable: list[int]
    ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """(rows (B,), activated predictions per target) per batch, as the loader gives them;
        appends to `unusable` each batch's count of rows with a cell treated as missing."""
        for batch in stream_loader(dataset):
            with torch.inference_mode():
                outputs = self.model.predict(batch.inputs, batch.present)
            assert batch.rows is not None  # streamed batches always carry their rows
            unusable.append(_unusable(batch))
            yield batch.rows, outputs

    # -- public API -----------------------------------------------------------
    def evaluate_dataset(self, dataset: TableDataset, drop: Collection[str] = ()) -> dict[str, float]:
        preds, targets = self._outputs(dataset, drop)
        per_target = {}
        for t, proc in self.targets.items():
            if isinstance(proc, TextTarget):  # generated text against every reference
                texts = [dataset.target_texts[t][i] for i in dataset.keep.tolist()]
                refs = references(texts, dataset.input_groups())
                per_target[t] = text_metrics(proc.decode(preds[t]), refs)
                continue
            if isinstance(proc, PairTarget):  # embeddings: recall@k between the towers
                per_target[t] = retrieval_metrics(preds[t], targets[t], proc.towers_)
                continue
            thresholds = proc.thresholds_ if isinstance(proc, MultilabelTarget) else None
            metrics = TaskMetrics(proc.kind, proc.num_classes, thresholds)
            metrics.update(preds[t], targets[t])
            per_target[t] = metrics.compute()
        return flatten(per_target)

    def evaluate(
        self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Metrics on a labelled table: accuracy, macro_f1 (roc_auc); rmse, mae, r2; or for
        text targets bleu, chrf, exact_match, wer. A folder or fsspec URL of Parquet
        shards is streamed (every row, in bounded memory)."""
        if is_shard_source(data):
            return self._evaluate_stream(self._stream(data, True, base_dir))  # type: ignore[arg-type]
        _, dataset = self._dataset(data, with_targets=True, base_dir=base_dir)
        return self.evaluate_dataset(dataset)

    def robustness(
        self,
        data: str | Path | pd.DataFrame,
        levels: Sequence[float] = DEFAULT_LEVELS,
        seed: int = 0,
        baseline: Predictor | None = None,
        base_dir: str | Path | None = None,
    ) -> Robustness:
        """The metric with inputs missing and with noisy inputs, plus MultiBench's relative
        (and, against `baseline`, effective) robustness; see evaluation/robustness.py."""
        return evaluate_robustness(self, data, levels, seed, baseline, base_dir)

    def predict(self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None) -> pd.DataFrame:
        """One row per input row, in order: id columns, then per target the predicted
        label (or value) and, for classification, `<target>_prob_<class>` columns; for a
        multilabel target the predicted labels joined by its delimiter ("" for none) and
        `<target>_prob_<label>` columns. A folder or URL of Parquet shards is streamed,
        then gathered into one frame (`predict_chunks` hands it out piece by piece)."""
        if all(isinstance(p, PairTarget) for p in self.targets.values()):
            raise ConfigError("this is a retrieval run: use embed() / search() (plait embed, plait search)")
        if is_shard_source(data):
            return pd.concat(list(self.predict_chunks(data, base_dir)), ignore_index=True)
        frame, dataset = self._dataset(data, with_targets=False, base_dir=base_dir)
        preds, _ = self._outputs(dataset)
        return prediction_frame(frame, self.config.id_columns, self.targets, preds)

    def predict_chunks(
        self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None, rows: int = 8192
    ) -> Iterator[pd.DataFrame]:
        """`predict` piece by piece, in table order: a folder or URL of Parquet shards is
        streamed (loader workers decode their own row groups) and handed out about
        `rows` rows at a time, indexed by table position; a table file is one piece."""
        if not is_shard_source(data):
            yield self.predict(data, base_dir)
            return
        if all(isinstance(p, PairTarget) for p in self.targets.values()):
            raise ConfigError("this is a retrieval run: use embed() / search() (plait embed, plait search)")
        dataset = self._stream(data, with_targets=False, base_dir=base_dir)  # type: ignore[arg-type]
        ids = IdColumns(dataset.shards, self.config.id_columns)
        unusable: list[int] = []
        for first, n, preds in in_table_order(self._stream_outputs(dataset, unusable), rows):
            yield prediction_frame(ids.rows(first, n), ids.names, self.targets, preds)
        if sum(unusable):
            what = "predicted with those cells treated as missing"
            message = f"{sum(unusable)} row(s) with an unusable cell {what}"
            warnings.warn(message, BadRowsWarning, stacklevel=2)

    def generate(
        self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None, **decoding: Any
    ) -> pd.DataFrame:
        """`predict` with decoding options for text targets: decoding (greedy, beam,
        sample), beam_width, length_penalty, temperature, top_k, top_p, max_length."""
        heads = [h for h in self.model.heads.values() if isinstance(h, DecoderHead)]
        if not heads:
            raise ConfigError("generate() needs a run with a text target")
        unknown = sorted(set(decoding) - {*heads[0].options, "max_length"})
        if unknown:
            raise ConfigError(
                f"unknown decoding option(s) {', '.join(unknown)}; "
                f"valid: {', '.join(heads[0].options)}, max_length"
            )
        saved = [(h.options, h.max_length) for h in heads]
        try:
            for h in heads:
                h.options = {**h.options, **{k: v for k, v in decoding.items() if k != "max_length"}}
                h.max_length = min(h.max_length, int(decoding.get("max_length", h.max_length)))
            return self.predict(data, base_dir)
        finally:
            for h, (options, length) in zip(heads, saved, strict=True):
                h.options, h.max_length = options, length

    # -- explanations (see evaluation/importance.py, attribution.py) ------------
    def explain(
        self,
        data: str | Path | pd.DataFrame,
        bootstrap: int = 200,
        seed: int = 0,
        target: str | None = None,
        benchmark: str | Path | None = None,
        base_dir: str | Path | None = None,
    ) -> Importance:
        """How much the metric drops when each input (and modality) is removed, permuted,
        or left alone, with bootstrap intervals, per-class drops and shortcut warnings."""
        return importance.explain(self, data, bootstrap, seed, target, base_dir, benchmark)

    def explain_rows(
        self,
        data: str | Path | pd.DataFrame,
        rows: Sequence[int],
        output_dir: str | Path | None = None,
        target: str | None = None,
        base_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> pd.DataFrame:
        """Each input's contribution to the predictions of `rows` (1-based), and image
        saliency PNGs in `output_dir` (replacing those there only with `overwrite`)."""
        return attribution.explain_rows(self, data, rows, output_dir, target, base_dir, overwrite)

    # -- retrieval runs (see retrieval.py) --------------------------------------
    def embed(
        self, data: str | Path | pd.DataFrame, column: str, base_dir: str | Path | None = None
    ) -> Embeddings:
        """Unit-length embeddings of one tower column, one per row (NaN where empty)."""
        return retrieval.embed(self, data, column, base_dir)

    def search(
        self,
        queries: str | list[str],
        index: str | Path | pd.DataFrame | Embeddings,
        top: int = 10,
        query_column: str | None = None,
        index_column: str | None = None,
        base_dir: str | Path | None = None,
    ) -> pd.DataFrame:
        """The `top` nearest distinct items of `index` (a table or saved embeddings) per
        query (text, or a media file path)."""
        return retrieval.search(self, queries, index, top, query_column, index_column, base_dir)

    def zero_shot(
        self,
        data: str | Path | pd.DataFrame,
        column: str,
        labels: list[str],
        template: str = "a photo of a {label}",
        text_column: str | None = None,
        base_dir: str | Path | None = None,
    ) -> pd.DataFrame:
        """Classify a tower's items among `labels` by their similarity to text prompts."""
        return retrieval.zero_shot(self, data, column, labels, template, text_column, base_dir)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Copy the run folder to `path` (atomically)."""
        if self.run_dir is None:
            raise RunFolderError("this predictor has no run folder to save")
        path = Path(path)
        with staging(path, overwrite, Inputs().add_folder(self.run_dir, "the run folder")) as tmp:
            shutil.copytree(self.run_dir, tmp, dirs_exist_ok=True)
        return path


def _concat(outputs: list[Tensor]) -> Tensor:
    """Batches → one tensor; generated ids (B, L) are padded to the longest batch's L."""
    if outputs and outputs[0].dtype == torch.long and outputs[0].dim() == 2:
        width = max(o.shape[1] for o in outputs)
        outputs = [torch.nn.functional.pad(o, (0, width - o.shape[1]), value=PAD) for o in outputs]
    return torch.cat(outputs)


def _unusable(batch: Batch) -> int:
    """Rows of a streamed batch kept with an unusable cell treated as missing."""
    return 0 if batch.unusable is None else int(batch.unusable.sum())

"""Predictor: a trained run, ready to predict and evaluate (used by the CLI and the API).

A thin facade over plait.inference (the loaded run, datasets, outputs) and the
analyses that take a run (explain, robustness, retrieval)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from plait import inference, retrieval
from plait.config import ResolvedConfig
from plait.data.dataset import TableDataset
from plait.data.processors import InputProcessor, PairTarget, TargetProcessor
from plait.data.stream_order import IdColumns, in_table_order
from plait.ensemble import Ensemble
from plait.errors import BadRowsWarning, ConfigError, RunFolderError
from plait.evaluation import attribution, importance
from plait.evaluation.importance import Importance
from plait.evaluation.robustness import DEFAULT_LEVELS, Robustness, evaluate_robustness
from plait.heads.decoder import DecoderHead
from plait.inference import Run
from plait.model import MultimodalModel
from plait.output_paths import Inputs
from plait.outputs import prediction_frame
from plait.retrieval import Embeddings
from plait.runfolder import staging


class Predictor:
    def __init__(
        self,
        config: ResolvedConfig,
        processors: dict[str, InputProcessor],
        targets: dict[str, TargetProcessor],
        model: MultimodalModel,
        run_dir: Path | None = None,
        ensemble: Ensemble | None = None,
    ) -> None:
        self.run = Run(config, processors, targets, model, run_dir, ensemble)

    @classmethod
    def load(cls, run_dir: str | Path, on_bad_row: str | None = None) -> Predictor:
        """The run in `run_dir`. `on_bad_row` (error, missing, skip) replaces the run's
        setting for every table this predictor reads (`--on-bad-row`)."""
        run = inference.load_run(run_dir, on_bad_row)
        return cls(run.config, run.processors, run.targets, run.model, run.run_dir, run.ensemble)

    # The run's parts, as attributes (plait.inference.Run holds them).
    @property
    def config(self) -> ResolvedConfig:
        return self.run.config

    @property
    def processors(self) -> dict[str, InputProcessor]:
        return self.run.processors

    @property
    def targets(self) -> dict[str, TargetProcessor]:
        return self.run.targets

    @property
    def model(self) -> MultimodalModel:
        return self.run.model

    @property
    def run_dir(self) -> Path | None:
        return self.run.run_dir

    # -- public API -----------------------------------------------------------
    def evaluate_dataset(self, dataset: TableDataset, drop: Collection[str] = ()) -> dict[str, float]:
        """Metrics on a dataset already built for this run (`drop`: inputs removed)."""
        return inference.evaluate_dataset(self.run, dataset, drop)

    def evaluate(
        self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None
    ) -> dict[str, float]:
        """Metrics on a labelled table: accuracy, macro_f1 (roc_auc); rmse, mae, r2; or for
        text targets bleu, chrf, exact_match, wer. A folder or fsspec URL of Parquet
        shards is streamed (every row, in bounded memory)."""
        if inference.is_stream(data):
            return inference.evaluate_stream(
                self.run, inference.stream_dataset(self.run, data, True, base_dir)
            )  # type: ignore[arg-type]
        _, dataset = inference.table_dataset(self.run, data, with_targets=True, base_dir=base_dir)
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
        return evaluate_robustness(
            self.run, data, levels, seed, None if baseline is None else baseline.run, base_dir
        )

    def predict(self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None) -> pd.DataFrame:
        """One row per input row, in order: id columns, then per target the predicted
        label (or value) and, for classification, `<target>_prob_<class>` columns; for a
        multilabel target the predicted labels joined by its delimiter ("" for none) and
        `<target>_prob_<label>` columns. A folder or URL of Parquet shards is streamed,
        then gathered into one frame (`predict_chunks` hands it out piece by piece)."""
        if all(isinstance(p, PairTarget) for p in self.targets.values()):
            raise ConfigError("this is a retrieval run: use embed() / search() (plait embed, plait search)")
        if inference.is_stream(data):
            return pd.concat(list(self.predict_chunks(data, base_dir)), ignore_index=True)
        frame, dataset = inference.table_dataset(self.run, data, with_targets=False, base_dir=base_dir)
        preds, _ = inference.outputs(self.run, dataset)
        return prediction_frame(frame, self.config.id_columns, self.targets, preds)

    def predict_chunks(
        self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None, rows: int = 8192
    ) -> Iterator[pd.DataFrame]:
        """`predict` piece by piece, in table order: a folder or URL of Parquet shards is
        streamed (loader workers decode their own row groups) and handed out about
        `rows` rows at a time, indexed by table position; a table file is one piece."""
        if not inference.is_stream(data):
            yield self.predict(data, base_dir)
            return
        if all(isinstance(p, PairTarget) for p in self.targets.values()):
            raise ConfigError("this is a retrieval run: use embed() / search() (plait embed, plait search)")
        dataset = inference.stream_dataset(self.run, data, with_targets=False, base_dir=base_dir)  # type: ignore[arg-type]
        ids = IdColumns(dataset.shards, self.config.id_columns)
        unusable: list[int] = []
        for first, n, preds in in_table_order(inference.stream_outputs(self.run, dataset, unusable), rows):
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
        return importance.explain(self.run, data, bootstrap, seed, target, base_dir, benchmark)

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
        return attribution.explain_rows(self.run, data, rows, output_dir, target, base_dir, overwrite)

    # -- retrieval runs (see retrieval.py) --------------------------------------
    def embed(
        self, data: str | Path | pd.DataFrame, column: str, base_dir: str | Path | None = None
    ) -> Embeddings:
        """Unit-length embeddings of one tower column, one per row (NaN where empty)."""
        return retrieval.embed(self.run, data, column, base_dir)

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
        return retrieval.search(self.run, queries, index, top, query_column, index_column, base_dir)

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
        return retrieval.zero_shot(self.run, data, column, labels, template, text_column, base_dir)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Copy the run folder to `path` (atomically)."""
        if self.run_dir is None:
            raise RunFolderError("this predictor has no run folder to save")
        path = Path(path)
        with staging(path, overwrite, Inputs().add_folder(self.run_dir, "the run folder")) as tmp:
            shutil.copytree(self.run_dir, tmp, dirs_exist_ok=True)
        return path

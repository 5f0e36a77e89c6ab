"""summary.json: what the report needs from training, since `plait report RUN` has no data.

{"trained": "YYYY-MM-DD HH:MM", "rows": {"table": n, split: n}, "held_out": "test" | "validation",
 "sample_rows": n (a streamed table only: the rows the columns' summary describes),
 "columns": [{name, role, type, encoder, group, missing}],
 "labels": {target: {"type", "classes", "counts": {split: [n per class]}} (category, binary,
            multilabel: rows holding each label) or {"type", "stats", "edges", "counts"}
            (numeric: a histogram per split)},
 "evaluation": {target: details.target_details(...)},
 "leaderboard": [{target, candidate, val_<metric>, val_loss, weight, fit_seconds, ...}] (ensembles)}
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from torch import Tensor

from plait.atomic import atomic_write_text
from plait.config import ResolvedConfig
from plait.data.dataset import TableDataset, missing_rate, unusable_cells
from plait.data.processors import TargetProcessor
from plait.data.streaming import StreamingDataset
from plait.inference import Run, outputs
from plait.report.details import BOX_SAMPLES, target_details

if TYPE_CHECKING:
    from pathlib import Path

    from plait.inference import Run

SUMMARY_NAME = "summary.json"
HISTOGRAM_BINS = 20
DETAILED = ("category", "binary", "numeric", "multilabel", "boxes", "box")  # kinds with held-out details


def write_summary(
    folder: Path,
    cfg: ResolvedConfig,
    frame: pd.DataFrame,
    datasets: dict[str, TableDataset],
    run: Run,
) -> dict[str, Any]:
    summary = build_summary(cfg, frame, datasets, run)
    atomic_write_text(folder / SUMMARY_NAME, json.dumps(summary, indent=1))
    return summary


def build_summary(
    cfg: ResolvedConfig, frame: pd.DataFrame, datasets: dict[str, TableDataset], run: Run
) -> dict[str, Any]:
    held = "test" if "test" in datasets else "val"
    labels = {}
    for t, proc in run.targets.items():
        if proc.kind in DETAILED and proc.kind != "box":  # a box has no label to count
            labels[t] = label_distribution(proc, {k: _kept(ds, t) for k, ds in datasets.items()})
    evaluation: dict[str, Any] = {}
    if any(p.kind in DETAILED for p in run.targets.values()):
        preds, truth = outputs(run, datasets[held])
        for t, proc in run.targets.items():
            if proc.kind in DETAILED:
                images = _images(datasets[held], proc.image_input())
                evaluation[t] = target_details(proc, preds[t], truth[t], images)
    # A streamed table's `frame` is its sample: the columns' summary (missing rates)
    # describes the sample, while row and label counts come from every row.
    streamed = next((ds for ds in datasets.values() if isinstance(ds, StreamingDataset)), None)
    table_rows = streamed.shards.rows if streamed is not None else len(frame)
    summary = {
        "trained": datetime.now().isoformat(sep=" ", timespec="minutes"),
        "rows": {"table": table_rows, **{k: ds.n_rows for k, ds in datasets.items()}},
        "held_out": "test" if held == "test" else "validation",
        "columns": column_summary(cfg, frame, unusable_cells(datasets.values())),
        "labels": labels,
        "evaluation": evaluation,
    }
    if streamed is not None:
        summary["sample_rows"] = len(frame)
    if run.ensemble is not None:  # the candidates' validation scores, times and weights
        summary["leaderboard"] = run.ensemble.leaderboard
    return summary


def column_summary(
    cfg: ResolvedConfig, frame: pd.DataFrame, unusable: dict[str, int]
) -> list[dict[str, Any]]:
    """One record per table column: its role, type, encoder or head and missing rate
    (empty cells and the `unusable` ones, as the schema printed by training counts them)."""
    rows: dict[str, dict[str, Any]] = {}
    for col in cfg.inputs:
        rows[col.name] = {"role": "input", "type": col.type, "encoder": col.encoder.name, "group": col.group}
    for out in cfg.outputs:
        head = out.head.name
        if out.type == "retrieval":
            head += f" ({', '.join(out.columns)})"
        rows.setdefault(out.name, {"role": "target", "type": out.type, "encoder": head})
    for name in cfg.id_columns:
        rows.setdefault(name, {"role": "id (kept)"})
    if cfg.split_column:
        rows.setdefault(cfg.split_column, {"role": "split"})
    records = []
    for name in frame.columns:
        record = {"name": str(name), **rows.get(name, {"role": "ignored"})}
        record["missing"] = round(missing_rate(frame[name], unusable.get(name, 0)), 4)
        records.append(record)
    return records


def label_distribution(proc: TargetProcessor, per_split: dict[str, np.ndarray]) -> dict[str, Any]:
    """Counts per class (category, binary), rows per label (multilabel) or a shared-bins
    histogram (numeric), for each split."""
    if proc.kind == "numeric":
        values = np.concatenate(list(per_split.values()))
        edges = np.histogram_bin_edges(values, HISTOGRAM_BINS)
        stats = {"min": values.min(), "mean": values.mean(), "std": values.std(), "max": values.max()}
        return {
            "type": "numeric",
            "stats": {k: round(float(v), 6) for k, v in stats.items()},
            "edges": [round(float(v), 6) for v in edges],
            "counts": {k: np.histogram(v, edges)[0].tolist() for k, v in per_split.items()},
        }
    classes = [str(c) for c in proc.classes_]
    if proc.kind == "boxes":  # (N, M, 5): objects per class (class -1: padding)
        counts = {
            k: np.bincount(v[:, :, 4][v[:, :, 4] >= 0].astype(int), minlength=len(classes)).tolist()
            for k, v in per_split.items()
        }
    elif proc.kind == "multilabel":  # (N, C) 0/1
        counts = {k: v.sum(0).astype(int).tolist() for k, v in per_split.items()}
    else:  # (N,) class ids (binary: 0/1 floats)
        counts = {
            k: np.bincount(v.astype(int), minlength=len(classes)).tolist() for k, v in per_split.items()
        }
    return {"type": proc.kind, "classes": classes, "counts": counts}


def _images(dataset: TableDataset | StreamingDataset, image: str | None) -> Tensor | None:
    """The first held-out rows' stored images, uint8 (n, C, H, W), for box targets."""
    if image is None or not isinstance(dataset, TableDataset):
        return None
    return dataset.columns[image].take(dataset.keep[:BOX_SAMPLES])[0]


def _kept(dataset: TableDataset, target: str) -> np.ndarray:
    return dataset.target_values(target).float().numpy()

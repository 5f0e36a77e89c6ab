"""K-fold cross-validation: one run per fold, test metrics summarised as mean ± std."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plait.config import PlaitConfig, apply_overrides, as_config
from plait.data.fingerprint import media_columns
from plait.data.schema import resolve_config
from plait.data.table import read_table
from plait.errors import ConfigError
from plait.output_paths import table_inputs
from plait.runfolder import staging
from plait.train import default_run_dir, fit

FOLD_COLUMN = "__plait_fold__"


def fold_ids(n_rows: int, folds: int, seed: int) -> np.ndarray:
    """(n_rows,) fold number per row: a seeded shuffle cut into near-equal parts."""
    order = np.random.default_rng(seed).permutation(n_rows)
    ids = np.empty(n_rows, dtype=np.int64)
    for k, part in enumerate(np.array_split(order, folds)):
        ids[part] = k
    return ids


def cross_validate(
    data: str | Path | pd.DataFrame,
    label: str | list[str] | None = None,
    folds: int = 5,
    config: str | Path | dict[str, Any] | PlaitConfig | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    types: dict[str, str] | None = None,
    base_dir: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train `folds` models, each tested on one held-out fold (validation rows are carved
    from the other folds). Writes OUT/fold-K run folders and OUT/cv.json, and returns
    {"folds": [...per-fold test metrics], "mean": {...}, "std": {...}}."""
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    cfg = apply_overrides(as_config(config), epochs=epochs, seed=seed)  # before any work
    table = read_table(data, base_dir)
    if len(table.frame) < folds:
        raise ConfigError(f"cannot make {folds} folds from {len(table.frame)} rows")
    frame = table.frame.copy()
    frame[FOLD_COLUMN] = fold_ids(len(frame), folds, cfg.seed)
    labels = [label] if isinstance(label, str) else list(label or [])
    out_dir = Path(out) if out else default_run_dir([*labels, "cv"])
    per_fold: list[dict[str, float]] = []
    media = media_columns(resolve_config(table.frame, cfg, labels, types))
    with staging(out_dir, overwrite, table_inputs(data, table.frame, table.base_dir, media)) as tmp:
        for k in range(folds):
            split = np.where(frame[FOLD_COLUMN] == k, "test", "train")
            fold_frame = frame.drop(columns=FOLD_COLUMN).assign(**{FOLD_COLUMN: split})
            fold_cfg = cfg.model_copy(update={"split_column": FOLD_COLUMN}, deep=True)
            if verbose:
                print(f"fold {k + 1}/{folds}", flush=True)
            fit(
                fold_frame,
                label=labels,
                config=fold_cfg,
                out=tmp / f"fold-{k + 1}",
                types=types,
                base_dir=table.base_dir,
                verbose=verbose and k == 0,
            )
            per_fold.append(json.loads((tmp / f"fold-{k + 1}" / "metrics.json").read_text())["test"])
        names = list(per_fold[0])
        summary = {
            "folds": per_fold,
            "mean": {m: statistics.fmean(f[m] for f in per_fold) for m in names},
            "std": {m: statistics.stdev(f[m] for f in per_fold) for m in names},
        }
        (tmp / "cv.json").write_text(json.dumps(summary, indent=2))
    return summary

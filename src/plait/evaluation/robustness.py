"""`plait evaluate RUN DATA --robustness`: how a trained model degrades when inputs
go missing or get noisy.

Conditions, all on the same labelled table:
- clean;
- each input removed (presence mask off in every row), and every input but one
  removed (skipped where it repeats a condition, as with two inputs);
- each input corrupted at increasing noise levels (see `corruptions.py`).

Per noisy input, two summaries as defined by MultiBench (Liang et al. 2021):
- relative robustness: the area under the metric-vs-noise-level curve (clean at
  level 0), divided by the level range, so it reads as the mean metric across levels;
- effective robustness: the same area for (metric − its clean value) minus that of
  a baseline run (MultiBench uses late fusion), i.e. how much less the model loses
  than the baseline once both start from the same clean score. Needs `baseline`.
The metric is accuracy for classification, R² for regression, mean average
precision for multi-label targets, BLEU for text, recall@1 for retrieval, mAP for
detection and the share of boxes found (IoU ≥ 0.5) for grounding (higher
is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plait.config import check_seed
from plait.data.dataset import TableDataset
from plait.data.processors import Encoded, InputProcessor, TabularProcessor
from plait.errors import ConfigError
from plait.evaluation.corruptions import CORRUPTIONS, Corruption
from plait.inference import Run, evaluate_dataset, table_dataset

ROBUSTNESS_METRIC = {
    "category": "accuracy",
    "binary": "accuracy",
    "numeric": "r2",
    "multilabel": "mean_ap",
    "text": "bleu",
    "retrieval": "recall@1",  # mean of both directions
    "boxes": "map",
    "box": "iou_accuracy",
}
DEFAULT_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class Robustness:
    metric: str  # the metric's key in `Predictor.evaluate` results
    clean: float
    missing: pd.DataFrame  # condition, dropped, <metric>
    noise: pd.DataFrame  # input, corruption, level, <metric>  (level 0 = clean)
    summary: pd.DataFrame  # input, corruption, clean, worst, relative, effective

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "clean": self.clean,
            "missing": self.missing.to_dict(orient="records"),
            "noise": self.noise.to_dict(orient="records"),
            "summary": self.summary.to_dict(orient="records"),
        }


def robustness_metric(run: Run) -> str:
    target, proc = next(iter(run.targets.items()))
    name = ROBUSTNESS_METRIC[proc.kind]
    return name if len(run.targets) == 1 else f"{target}/{name}"


def evaluate_robustness(
    run: Run,
    data: str | Path | pd.DataFrame,
    levels: Sequence[float] = DEFAULT_LEVELS,
    seed: int = 0,
    baseline: Run | None = None,
    base_dir: str | Path | None = None,
) -> Robustness:
    levels = sorted(float(v) for v in levels)
    if not levels or not all(0 < v <= 1 for v in levels):  # NaN fails too
        raise ConfigError(f"noise levels must lie in (0, 1], got {levels}")
    check_seed(seed)
    metric = robustness_metric(run)
    frame, clean = table_dataset(run, data, with_targets=True, base_dir=base_dir)
    clean_score = evaluate_dataset(run, clean)[metric]
    missing = _missing_conditions(run, clean, metric)
    noise = _noise_curves(run, frame, clean, metric, clean_score, levels, seed)
    base_noise = None
    if baseline is not None:
        base_metric = robustness_metric(baseline)
        base_frame, base_clean = table_dataset(baseline, data, with_targets=True, base_dir=base_dir)
        base_score = evaluate_dataset(baseline, base_clean)[base_metric]
        base_noise = _noise_curves(baseline, base_frame, base_clean, base_metric, base_score, levels, seed)
        base_noise = base_noise.rename(columns={base_metric: metric})
    summary = summarise(noise, metric, base_noise)
    return Robustness(metric, clean_score, missing, noise, summary)


def _missing_conditions(run: Run, clean: TableDataset, metric: str) -> pd.DataFrame:
    keys = sorted(run.processors)
    conditions: dict[frozenset[str], str] = {}
    if len(keys) > 1:
        for key in keys:
            conditions.setdefault(frozenset({key}), f"without {key}")
        for key in keys:
            conditions.setdefault(frozenset(keys) - {key}, f"only {key}")
    rows = [
        {
            "condition": name,
            "dropped": ", ".join(sorted(drop)),
            metric: evaluate_dataset(run, clean, drop)[metric],
        }
        for drop, name in conditions.items()
    ]
    return pd.DataFrame(rows, columns=["condition", "dropped", metric])


def _column_corruptions(key: str, processor: InputProcessor) -> list[tuple[Corruption, list[str]]]:
    """(corruption, raw columns it applies to) for one input."""
    if isinstance(processor, TabularProcessor):
        result = []
        for kind, columns in (("numeric", list(processor.numeric)), ("category", list(processor.category))):
            if columns:
                result += [(c, columns) for c in CORRUPTIONS[kind]]
        return result
    return [(c, [key]) for c in CORRUPTIONS.get(processor.modality, [])]


def _corrupted_column(
    processor: InputProcessor,
    key: str,
    frame: pd.DataFrame,
    corruption: Corruption,
    columns: list[str],
    level: float,
    rng: np.random.Generator,
    on_bad_row: str,
) -> Encoded:
    if corruption.cells is not None:
        frame = frame.copy()
        for column in columns:
            frame[column] = corruption.cells(frame[column], level, rng)
        return processor.transform(processor.select(frame, key), key, on_bad_row=on_bad_row)
    assert corruption.decoded is not None
    processor.perturb = corruption.decoded(level, rng)
    try:
        return processor.transform(processor.select(frame, key), key, on_bad_row=on_bad_row)
    finally:
        processor.perturb = None


def _noise_curves(
    run: Run,
    frame: pd.DataFrame,
    clean: TableDataset,
    metric: str,
    clean_score: float,
    levels: list[float],
    seed: int,
) -> pd.DataFrame:
    on_bad = "missing" if run.config.on_bad_row == "error" else run.config.on_bad_row
    rows = []
    for k, (key, processor) in enumerate(sorted(run.processors.items())):
        for c, (corruption, columns) in enumerate(_column_corruptions(key, processor)):
            rows.append({"input": key, "corruption": corruption.name, "level": 0.0, metric: clean_score})
            for level in levels:
                # One stream per (input, corruption, level): the same noise on every run.
                rng = np.random.default_rng([seed, k, c, round(level * 1000)])
                column = _corrupted_column(processor, key, frame, corruption, columns, level, rng, on_bad)
                dataset = TableDataset(
                    {**clean.columns, key: column},
                    clean.processors,
                    clean.targets,
                    skip_bad_rows=clean.skip,
                    target_texts=clean.target_texts,
                )
                score = evaluate_dataset(run, dataset)[metric]
                rows.append({"input": key, "corruption": corruption.name, "level": level, metric: score})
    return pd.DataFrame(rows, columns=["input", "corruption", "level", metric])


def _area(levels: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid area divided by the level range: the mean value across the curve."""
    return float(np.trapezoid(values, levels) / (levels[-1] - levels[0]))


def summarise(noise: pd.DataFrame, metric: str, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = []
    for (key, name), curve in noise.groupby(["input", "corruption"], sort=False):
        x, f = curve["level"].to_numpy(), curve[metric].to_numpy()
        row = {"input": key, "corruption": name, "clean": f[0], "worst": f.min(), "relative": _area(x, f)}
        row["effective"] = float("nan")
        if baseline is not None:
            base = baseline[(baseline["input"] == key) & (baseline["corruption"] == name)]
            if len(base) == len(curve):
                b = base[metric].to_numpy()
                row["effective"] = _area(x, (f - f[0]) - (b - b[0]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["input", "corruption", "clean", "worst", "relative", "effective"])

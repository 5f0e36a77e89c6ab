"""`plait explain RUN DATA`: which inputs does a trained model rely on? Measured, on
held-out rows, as the drop in the task metric when an input is taken away.

Three ways to take an input away, for every input (column, or tabular group) and
every modality (all inputs of one kind together):
- remove: its presence mask is switched off, as if missing in every row (what the
  model was built to cope with);
- permute: its values are shuffled across rows (permutation importance, Breiman
  2001; Fisher et al. 2019): the model still sees a plausible input, but one that
  carries no information about the row;
- only: every other input is removed; the score the input reaches by itself.
Drops come with paired bootstrap 95% intervals: the rows are resampled, and the clean
and ablated scores are computed on the same resample. For classification, the drop
in each class's recall too. Shortcut warnings say in words when one modality carries
(almost) all the signal, or when a single input matches the fused model.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.config import check_seed
from plait.data.dataset import TableDataset
from plait.data.processors import CategoryTarget, Encoded, TabularProcessor
from plait.errors import ConfigError
from plait.evaluation.metrics import TaskMetrics
from plait.evaluation.robustness import ROBUSTNESS_METRIC
from plait.evaluation.thresholds import decision_thresholds
from plait.inference import Run, outputs, table_dataset

METHODS = ("remove", "permute", "only")
# A modality "carries almost all the signal" when removing it costs this share of the
# summed removal drops, and every other modality's drop is within noise of zero.
DOMINANT_SHARE = 0.9


@dataclass
class Importance:
    target: str
    metric: str
    clean: float
    rows: int
    bootstrap: int
    inputs: pd.DataFrame  # input, modality, method, score, drop, low, high
    modalities: pd.DataFrame  # modality, method, score, drop, low, high
    per_class: pd.DataFrame  # class, input, method, recall, drop (classification only)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "metric": self.metric,
            "clean": self.clean,
            "rows": self.rows,
            "bootstrap": self.bootstrap,
            "inputs": _records(self.inputs),
            "modalities": _records(self.modalities),
            "per_class": _records(self.per_class),
            "warnings": self.warnings,
        }


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts, NaN (no bootstrap) as None: strict JSON has no NaN."""
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def modality_of(run: Run, key: str) -> str:
    processor = run.processors[key]
    return "tabular" if isinstance(processor, TabularProcessor) else processor.modality


def explain(
    run: Run,
    data: str | Path | pd.DataFrame,
    bootstrap: int = 200,
    seed: int = 0,
    target: str | None = None,
    base_dir: str | Path | None = None,
    benchmark: str | Path | None = None,
) -> Importance:
    """Importance of each input and modality for `target` (default: the first).
    `benchmark`: a `plait benchmark` output folder; its single-input models are
    compared with the fused one for the shortcut warnings."""
    target = target or next(iter(run.targets))
    if target not in run.targets:
        raise ConfigError(f"unknown target {target!r}; targets: {', '.join(run.targets)}")
    proc = run.targets[target]
    if proc.kind not in ("category", "binary", "numeric", "multilabel", "boxes", "box"):
        raise ConfigError(
            f"explain measures classification, regression, multi-label and box targets; {target!r} is "
            f"{proc.kind} (use plait evaluate --robustness for its inputs-missing scores)"
        )
    if bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, got {bootstrap}")
    check_seed(seed)
    metric = ROBUSTNESS_METRIC[proc.kind]
    _, dataset = table_dataset(run, data, with_targets=True, base_dir=base_dir)
    if len(dataset) < 2:
        raise ConfigError(f"explain needs at least 2 labelled rows, got {len(dataset)}")
    keys = sorted(run.processors)
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(modality_of(run, key), []).append(key)

    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(dataset), len(dataset)) for _ in range(bootstrap)]
    perm = torch.from_numpy(rng.permutation(len(dataset)))
    clean_preds, truth = _predict(run, dataset, target)
    score = _Scorer(run, target, metric, samples, clean_preds, truth)

    def conditions(members: list[str]) -> dict[str, Tensor]:
        others = [k for k in keys if k not in members]
        found = {
            "remove": _predict(run, dataset, target, drop=members)[0],
            "permute": _predict(run, _permuted(dataset, members, perm), target)[0],
        }
        if others:
            found["only"] = _predict(run, dataset, target, drop=others)[0]
        return found

    input_rows, modality_rows, class_rows = [], [], []
    for key in keys:
        for method, preds in conditions([key]).items():
            found = score.drop(preds)
            input_rows.append({"input": key, "modality": modality_of(run, key), "method": method, **found})
            if isinstance(proc, CategoryTarget) and method != "only":
                class_rows += _per_class(proc, clean_preds, preds, truth, key, method)
    for modality, members in groups.items():
        if len(members) == 1:  # the modality is one input: its rows say it all
            modality_rows += [
                {"modality": modality, **{k: v for k, v in r.items() if k not in ("input", "modality")}}
                for r in input_rows
                if r["input"] == members[0]
            ]
            continue
        for method, preds in conditions(members).items():
            modality_rows.append({"modality": modality, "method": method, **score.drop(preds)})
    inputs = pd.DataFrame(input_rows, columns=["input", "modality", "method", "score", "drop", "low", "high"])
    modalities = pd.DataFrame(modality_rows, columns=["modality", "method", "score", "drop", "low", "high"])
    per_class = pd.DataFrame(class_rows, columns=["class", "input", "method", "recall", "drop"])
    result = Importance(target, metric, score.clean, len(dataset), bootstrap, inputs, modalities, per_class)
    result.warnings = shortcut_warnings(result)
    if benchmark is not None:
        result.warnings += benchmark_notes(Path(benchmark), run.config.fusion.name)
    return result


class _Scorer:
    """The metric of one target on all rows, and on each bootstrap resample, paired
    with the clean predictions' score on the same resample."""

    def __init__(
        self,
        run: Run,
        target: str,
        metric: str,
        samples: list[np.ndarray],
        clean: Tensor,
        truth: Tensor,
    ) -> None:
        proc = run.targets[target]
        self.kind, self.classes, self.metric = proc.kind, proc.num_classes, metric
        self.thresholds = decision_thresholds(proc)
        self.samples = [torch.from_numpy(s) for s in samples]
        self.truth = truth
        self.clean = self(clean, truth)
        self.clean_samples = [self(clean[s], truth[s]) for s in self.samples]

    def __call__(self, preds: Tensor, truth: Tensor) -> float:
        metrics = TaskMetrics(self.kind, self.classes, self.thresholds)
        metrics.update(preds, truth)
        return float(metrics.compute()[self.metric])

    def drop(self, preds: Tensor) -> dict[str, float]:
        """Score with an input taken away, its drop from clean, and the drop's paired
        bootstrap 95% interval (NaN without resamples)."""
        found = self(preds, self.truth)
        low = high = float("nan")
        if self.samples:
            drops = [
                c - self(preds[s], self.truth[s])
                for c, s in zip(self.clean_samples, self.samples, strict=True)
            ]
            low, high = (float(v) for v in np.nanpercentile(drops, [2.5, 97.5]))
        return {"score": found, "drop": self.clean - found, "low": low, "high": high}


def _predict(
    run: Run, dataset: TableDataset, target: str, drop: Collection[str] = ()
) -> tuple[Tensor, Tensor]:
    preds, truth = outputs(run, dataset, drop)
    return preds[target], truth[target]


def _permuted(dataset: TableDataset, keys: list[str], perm: Tensor) -> TableDataset:
    """The dataset with the inputs `keys` shuffled across its (kept) rows, together."""
    columns = dict(dataset.columns)
    rows = dataset.keep
    for key in keys:
        column = columns[key]
        # Row rows[i] now shows the cell of row rows[perm[i]] (presence travels with it).
        source = torch.arange(len(column))
        source[rows] = rows[perm]
        index = source if column.index is None else column.index[source]
        columns[key] = Encoded(column.values, column.present[source], index, column.bad_rows)
    shuffled = copy.copy(dataset)
    shuffled.columns = columns
    return shuffled


def _per_class(
    proc: CategoryTarget, clean: Tensor, preds: Tensor, truth: Tensor, key: str, method: str
) -> list[dict]:
    """Recall of each class with the input taken away, and its drop from clean."""

    def recalls(p: Tensor) -> Tensor:
        if p.dim() == 1:  # binary: (B,) P(positive), decided at its tuned threshold
            predicted = (p >= (decision_thresholds(proc) or [0.5])[0]).long()
        else:
            predicted = p.argmax(1)
        hit = (predicted == truth.long()).float()
        counts = torch.bincount(truth.long(), minlength=len(proc.classes_)).float()
        return torch.bincount(truth.long(), weights=hit, minlength=len(proc.classes_)) / counts.clamp_min(1)

    base, taken = recalls(clean), recalls(preds)
    present = torch.bincount(truth.long(), minlength=len(proc.classes_)) > 0
    return [
        {
            "class": name,
            "input": key,
            "method": method,
            "recall": float(taken[i]),
            "drop": float(base[i] - taken[i]),
        }
        for i, name in enumerate(proc.classes_)
        if present[i]
    ]


def _significant(row: pd.Series) -> bool:
    """The drop's interval excludes zero (or, without bootstrap, it is above 0.01)."""
    return bool(row["low"] > 0) if not np.isnan(row["low"]) else bool(row["drop"] > 0.01)


def shortcut_warnings(result: Importance) -> list[str]:
    """Plain-language notes on what the model relies on (empty when nothing stands out)."""
    notes = []
    table = (
        result.modalities if len(result.modalities) else result.inputs.rename(columns={"input": "modality"})
    )
    removed = table[table["method"] == "remove"].set_index("modality")
    if len(removed) > 1:
        drops = removed["drop"].clip(lower=0)
        top = drops.idxmax()
        others = [m for m in removed.index if m != top]
        quiet = [m for m in others if not _significant(removed.loc[m])]
        if drops.sum() > 0 and drops[top] >= DOMINANT_SHARE * drops.sum() and len(quiet) == len(others):
            permuted = table[table["method"] == "permute"].set_index("modality")
            # Ignored: neither removing nor shuffling it changes the score measurably.
            ignored = [m for m in quiet if m not in permuted.index or not _significant(permuted.loc[m])]
            used = [f"{m} still costs {permuted.loc[m, 'drop']:.3f}" for m in quiet if m not in ignored]
            note = (
                f"The model relies almost entirely on {top}: removing it costs {drops[top]:.3f} "
                f"{result.metric}, while removing {', '.join(quiet)} costs no measurable amount."
            )
            if ignored:
                note += f" It ignores {', '.join(ignored)}."
            if used:
                them = "it" if len(used) == 1 else "them"
                note += f" Shuffling {', '.join(used)}, so the model uses {them} a little."
            notes.append(
                note + f" Check whether {top} leaks the label, or train with modality dropout if the "
                "other inputs should count."
            )
    only = result.inputs[result.inputs["method"] == "only"]
    for _, row in only.iterrows():
        if row["score"] >= result.clean - 0.005 and len(result.inputs["input"].unique()) > 1:
            notes.append(
                f"{row['input']} alone scores {row['score']:.3f} {result.metric}, as much as all inputs "
                f"together ({result.clean:.3f}): the other inputs add nothing this model uses."
            )
    return notes


def benchmark_notes(folder: Path, fusion: str) -> list[str]:
    """Single-input models of a `plait benchmark` run that match its `fusion` model
    (within the fused model's seed std, or 0.005)."""
    path = folder / "summary.csv"
    if not path.is_file():
        raise ConfigError(f"--benchmark expects a plait benchmark folder; {path} not found")
    summary = pd.read_csv(path).set_index("method")
    metric = summary.columns[0]  # summary.csv: method, <metric>, <metric>_std, ...
    if fusion not in summary.index:
        raise ConfigError(
            f"the benchmark in {folder} has no {fusion!r} model to compare with; "
            f"it has {', '.join(summary.index)}"
        )
    fused, spread = summary.loc[fusion, metric], max(float(summary.loc[fusion, f"{metric}_std"]), 0.005)
    lower_better = metric in ("rmse", "mae")
    notes = []
    for method, row in summary.iterrows():
        if not str(method).startswith("only "):
            continue
        value = row[metric]
        if (value <= fused + spread) if lower_better else (value >= fused - spread):
            notes.append(
                f"In the benchmark, a model trained on {str(method)[5:]} alone scores {value:.3f} {metric}, "
                f"matching the {fusion} model on all inputs ({fused:.3f}): fusion does not pay off "
                "on this data."
            )
    return notes

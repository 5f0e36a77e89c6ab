"""A batch's inputs as one flat table of numbers, for learners that are not networks.

Gradient-boosted trees and linear probes read what a network's encoders read, as far as
it is already a vector: the tabular group (scaled numbers, category ids), a numeric or
category column of its own, and the frozen pretrained features of image, text and audio
columns (the `medium` and `best` presets cache them). Raw pixels, waveforms and token ids
are left to the networks. A missing cell, or an input absent from a row (its presence
mask, which is also how explain and --robustness remove one), is NaN: LightGBM handles
missing values natively, and the linear probe imputes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import Tensor

from plait.data.processors import InputProcessor

# Input processor kinds whose transformed cells are vectors a tree or a linear model can read.
FLAT_KINDS = ("tabular", "numeric", "category", "features")


@dataclass
class FlatLayout:
    """Where each input's columns sit in the flat table, and which hold category ids."""

    inputs: dict[str, int]  # input key → its number of columns, in table order
    categorical: list[int]  # column positions holding category ids (LightGBM categories)
    names: list[str]  # one name per column, for feature importance
    embedded: list[str] = field(default_factory=list)  # inputs that are pretrained features

    @property
    def width(self) -> int:
        return sum(self.inputs.values())

    def span(self, key: str) -> slice:
        start = 0
        for name, width in self.inputs.items():
            if name == key:
                return slice(start, start + width)
            start += width
        raise KeyError(key)


# Principal components kept per embedding input. A 1,280-d image embedding beside a few
# table columns, on a few hundred rows, drowns the columns: the trees' column sampling
# mostly draws embedding dimensions and the linear probe overfits them. A few dozen
# directions keep most of the embedding's variance.
COMPONENTS = 32


@dataclass
class Projection:
    """Per embedding input: its training mean (D,) and top principal directions (D, k)."""

    mean: dict[str, np.ndarray]
    basis: dict[str, np.ndarray]

    @classmethod
    def fit(cls, layout: FlatLayout, x: np.ndarray, components: int = COMPONENTS) -> Projection:
        mean, basis = {}, {}
        for key in layout.embedded:
            values = x[:, layout.span(key)].astype(np.float64)
            values = values[~np.isnan(values).any(axis=1)]  # rows holding the input
            if len(values) < 2:
                continue
            k = min(components, values.shape[1], max(1, len(values) // 8))
            mean[key] = values.mean(axis=0)
            _, _, vt = np.linalg.svd(values - mean[key], full_matrices=False)
            basis[key] = vt[:k].T
        return cls(mean, basis)

    def apply(self, layout: FlatLayout, x: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """(N, reduced width) with each embedding replaced by its k components (NaN rows
        stay NaN), and the category columns' new positions."""
        parts, categorical, start = [], [], 0
        for key in layout.inputs:
            span = layout.span(key)
            part = x[:, span]
            if key in self.basis:
                part = ((part - self.mean[key]) @ self.basis[key]).astype(np.float32)
            categorical += [start + i - span.start for i in layout.categorical if span.start <= i < span.stop]
            parts.append(part)
            start += part.shape[1]
        rows = len(x)
        return (np.concatenate(parts, axis=1) if parts else np.zeros((rows, 0), np.float32)), categorical


def flat_layout(processors: dict[str, InputProcessor]) -> FlatLayout:
    """The flat table's columns for a run's fitted input processors."""
    inputs: dict[str, int] = {}
    categorical: list[int] = []
    names: list[str] = []
    embedded: list[str] = []
    for key, proc in processors.items():
        if proc.kind not in FLAT_KINDS:
            continue
        start = len(names)
        if proc.kind == "tabular":
            kwargs = proc.encoder_kwargs()
            numeric = kwargs["num_numeric"]
            ids = len(kwargs["category_sizes"])
            columns = proc.source_columns(key)  # numeric columns first, then category columns
            names += [f"{c}{part}" for c in columns[:numeric] for part in ("", " (missing)")]
            names += columns[numeric:]
            names += [
                f"{key} code {j}" for j in range(ids - (len(columns) - numeric))
            ]  # numbers read as codes
            categorical += range(start + 2 * numeric, start + 2 * numeric + ids)
        elif proc.kind == "numeric":
            names += [key, f"{key} (missing)"]
        elif proc.kind == "category":
            names.append(key)
            categorical.append(start)
        else:  # frozen pretrained features
            names += [f"{key}[{i}]" for i in range(proc.encoder_kwargs()["feature_dim"])]
            embedded.append(key)
        inputs[key] = len(names) - start
    return FlatLayout(inputs, categorical, names, embedded)


def flat_features(
    layout: FlatLayout,
    processors: dict[str, InputProcessor],
    inputs: dict[str, Tensor],
    present: dict[str, Tensor],
) -> np.ndarray:
    """(B, layout.width) float32: each flat input's cells side by side; NaN where a row
    lacks the input (its presence mask) or a numeric cell is empty."""
    parts = []
    for key in layout.inputs:
        values = inputs[key].detach().cpu().float().numpy().reshape(len(inputs[key]), -1).copy()
        kind = processors[key].kind
        if kind in ("tabular", "numeric"):
            numeric = processors[key].encoder_kwargs()["num_numeric"] if kind == "tabular" else 1
            for i in range(numeric):  # [scaled value, missing flag] per numeric column
                values[values[:, 2 * i + 1] > 0.5, 2 * i] = np.nan
        values[~present[key].cpu().numpy().astype(bool)] = np.nan
        parts.append(values)
    if not parts:  # no flat input (a run whose only other candidates are networks): (B, 0)
        return np.zeros((len(next(iter(present.values()), [])), 0), np.float32)
    return np.concatenate(parts, axis=1)

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

from dataclasses import dataclass

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

    @property
    def width(self) -> int:
        return sum(self.inputs.values())


def flat_layout(processors: dict[str, InputProcessor]) -> FlatLayout:
    """The flat table's columns for a run's fitted input processors."""
    inputs: dict[str, int] = {}
    categorical: list[int] = []
    names: list[str] = []
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
        inputs[key] = len(names) - start
    return FlatLayout(inputs, categorical, names)


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
    return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), np.float32)

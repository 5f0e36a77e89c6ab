"""Model outputs → the prediction table users get (shared by Predictor and the
exported-model runtime, so both write exactly the same columns)."""

from __future__ import annotations

import pandas as pd
from torch import Tensor

from plait.data.processors import (
    BinaryTarget,
    CategoryTarget,
    MultilabelTarget,
    PairTarget,
    TargetProcessor,
    TextTarget,
)


def prediction_frame(
    frame: pd.DataFrame, id_columns: list[str], targets: dict[str, TargetProcessor], preds: dict[str, Tensor]
) -> pd.DataFrame:
    """One row per input row, in order: id columns, then per target the predicted
    label (or value) and, for classification, `<target>_prob_<class>` columns; for a
    multilabel target the predicted labels joined by its delimiter ("" for none) and
    `<target>_prob_<label>` columns. Retrieval targets have no column (see embed)."""
    ids = [c for c in id_columns if c in frame.columns]
    result = frame[ids].copy()
    for t, proc in targets.items():
        p = preds[t].float().numpy()
        if isinstance(proc, PairTarget):
            continue
        if isinstance(proc, BinaryTarget):
            result[t] = [proc.classes_[int(v >= 0.5)] for v in p]
            result[f"{t}_prob_{proc.classes_[0]}"] = 1 - p
            result[f"{t}_prob_{proc.classes_[1]}"] = p
        elif isinstance(proc, CategoryTarget):
            result[t] = [proc.classes_[i] for i in p.argmax(1)]
            for i, name in enumerate(proc.classes_):
                result[f"{t}_prob_{name}"] = p[:, i]
        elif isinstance(proc, MultilabelTarget):
            result[t] = proc.decode(preds[t])
            probs = {f"{t}_prob_{name}": p[:, i] for i, name in enumerate(proc.classes_)}
            result = result.assign(**probs)  # at once: there may be many labels
        elif isinstance(proc, TextTarget):
            result[t] = proc.decode(preds[t])
        else:
            result[t] = p
    return result

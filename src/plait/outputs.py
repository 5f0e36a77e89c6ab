"""Model outputs → the prediction table users get (shared by Predictor and the
exported-model runtime, so both write exactly the same columns)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from torch import Tensor

from plait.atomic import atomic_path
from plait.data.processors import (
    BinaryTarget,
    BoxesTarget,
    BoxTarget,
    CategoryTarget,
    MultilabelTarget,
    PairTarget,
    TargetProcessor,
    TextTarget,
)
from plait.errors import DataError

PREDICTION_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl")


def prediction_frame(
    frame: pd.DataFrame, id_columns: list[str], targets: dict[str, TargetProcessor], preds: dict[str, Tensor]
) -> pd.DataFrame:
    """One row per input row, in order: id columns, then per target the predicted
    label (or value) and, for classification, `<target>_prob_<class>` columns; for a
    multilabel target the predicted labels joined by its delimiter ("" for none) and
    `<target>_prob_<label>` columns; for a boxes target a JSON list of
    [x0, y0, x1, y1, label, score] in pixels of the row's image, for a box target a JSON
    [x0, y0, x1, y1] and `<target>_score`. Retrieval targets have no column (see embed)."""
    ids = [c for c in id_columns if c in frame.columns]
    result = frame[ids].copy()
    for t, proc in targets.items():
        p = preds[t].float().numpy()
        if isinstance(proc, PairTarget):
            continue
        if isinstance(proc, BinaryTarget):
            result[t] = proc.decide(p)  # at its tuned threshold
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
        elif isinstance(proc, BoxesTarget):  # JSON [[x0, y0, x1, y1, label, score], ...] in pixels
            result[t] = proc.decode(preds[t], frame[proc.image])
        elif isinstance(proc, BoxTarget):  # JSON [x0, y0, x1, y1] in pixels, and its probability
            result[t] = proc.decode(preds[t], frame[proc.image])
            result[f"{t}_score"] = p[:, 4]
        else:
            result[t] = p
    return result


def check_prediction_path(path: str | Path) -> Path:
    """`path` if write_predictions can write it (by its suffix), else a one-line error."""
    path = Path(path)
    if path.suffix.lower() not in PREDICTION_SUFFIXES:
        raise DataError(f"--output must end in .csv, .parquet or .jsonl, got {path.name!r}")
    return path


def write_predictions(frames: Iterable[pd.DataFrame], path: str | Path) -> int:
    """Write `frames` (same columns, in order) one after another to a .csv, .parquet or
    .jsonl file; returns the rows written. Each frame is written as it comes (a Parquet
    row group, or lines appended), so a streamed table's predictions are never held
    whole; the file appears only when all are written, a failure leaving any previous
    one intact (plait.atomic)."""
    path = check_prediction_path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, parts, parquet = 0, 0, None
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)  # appended to: never onto a crashed run's leftover
        try:
            for frame in frames:
                if suffix == ".csv":
                    frame.to_csv(tmp, mode="a", header=parts == 0, index=False)
                elif suffix == ".jsonl":
                    frame.to_json(tmp, orient="records", lines=True, mode="a")
                else:
                    parquet = _write_row_group(frame, tmp, parquet, rows)
                rows, parts = rows + len(frame), parts + 1
        finally:
            if parquet is not None:
                parquet.close()
    return rows


def _write_row_group(
    frame: pd.DataFrame, tmp: Path, writer: pq.ParquetWriter | None, done: int
) -> pq.ParquetWriter:
    """One frame as a row group; later frames take the first one's column types (an id
    column may read as all-null or as floats in one row group and not in another)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(tmp, table.schema)
    elif not table.schema.equals(writer.schema):
        try:
            table = table.cast(writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as err:
            detail = " ".join(str(err).split())[:200]
            raise DataError(
                f"rows {done + 1}-{done + len(frame)}: a column's type differs from the earlier "
                f"rows' and cannot be written to one Parquet file ({detail})"
            ) from None
    writer.write_table(table)
    return writer

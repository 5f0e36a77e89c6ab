"""Read a table (CSV, Parquet, JSONL or a DataFrame) and infer each column's type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from plait.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")
# A string column with at most this many distinct values (or this share of rows) is a
# category rather than free text; short strings with more distinct values are text.
MAX_CATEGORIES = 50
MAX_CATEGORY_SHARE = 0.2
_ID_NAME = re.compile(r"(^|[_\s])(id|uuid|index|key)$|Id$", re.IGNORECASE)
SPLIT_NAMES = ("split", "fold", "subset")


@dataclass
class Table:
    """A read table and the folder its relative media paths are resolved against."""

    frame: pd.DataFrame
    base_dir: Path
    source: str  # file name or "DataFrame", used in messages


def read_table(data: str | Path | pd.DataFrame, base_dir: str | Path | None = None) -> Table:
    """Read `data`; media paths in it resolve against the table file's folder."""
    if isinstance(data, pd.DataFrame):
        frame, base, source = data.copy(), Path(base_dir or "."), "DataFrame"
    else:
        path = Path(data)
        if not path.exists():
            raise DataError(f"table file not found: {path}")
        frame = _read_file(path)
        base, source = Path(base_dir) if base_dir else path.parent, path.name
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError(
            f"table {source} is empty (no rows)"
            if frame.shape[1]
            else f"table {source} is empty (no columns)"
        )
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.reset_index(drop=True)
    return Table(frame, base.resolve(), source)


def _read_file(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"expected a table file, got a folder: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"table {path.name} is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        msg = " ".join(str(err).split())[:200]
        raise DataError(f"cannot read table {path}: {msg}") from None


def infer_input_type(series: pd.Series, name: str) -> str:
    """One of image, audio, text, numeric, category, ignore (ids and empty columns)."""
    if name.startswith("Unnamed: "):  # a saved DataFrame index, not data
        return "ignore"
    values = series.dropna()
    if ptypes.is_string_dtype(series) or ptypes.is_object_dtype(series):
        values = values.astype(str).str.strip()
        values = values[values != ""]
    if len(values) == 0:
        return "ignore"
    if ptypes.is_bool_dtype(series):
        return "category"
    if ptypes.is_numeric_dtype(series):
        if _ID_NAME.search(name):
            return "ignore"
        is_int = bool((values == values.round()).all())
        return "category" if is_int and values.nunique() <= 10 else "numeric"
    lower = values.str.lower()
    if lower.str.endswith(IMAGE_EXTENSIONS).mean() >= 0.9:
        return "image"
    if lower.str.endswith(AUDIO_EXTENSIONS).mean() >= 0.9:
        return "audio"
    n_unique = values.nunique()
    if _ID_NAME.search(name) and n_unique == len(values):
        return "ignore"
    if n_unique <= MAX_CATEGORIES or n_unique <= MAX_CATEGORY_SHARE * len(values):
        # Few distinct values: a category, unless they are sentences.
        if values.str.split().str.len().mean() < 4:
            return "category"
    return "text"


def infer_target_type(series: pd.Series) -> str:
    """One of binary, category, numeric, multilabel for a label column.

    Cells holding lists (Parquet, JSONL) make a multilabel target; delimited strings
    ("a|b") are only multilabel when declared so (`--type COL=multilabel`)."""
    values = series.dropna()
    if values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "multilabel"
    n_unique = values.nunique()
    if n_unique == 2:
        return "binary"
    if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
        is_int = bool((values == values.round()).all())
        if not (is_int and n_unique <= 20):
            return "numeric"
    return "category"


def infer_types(frame: pd.DataFrame, labels: list[str]) -> dict[str, str]:
    """Column name → inferred type (targets get target types)."""
    types: dict[str, str] = {}
    for name in frame.columns:
        if name in labels:
            types[name] = infer_target_type(frame[name])
        elif name.lower() in SPLIT_NAMES and _looks_like_split(frame[name]):
            types[name] = "split"
        else:
            types[name] = infer_input_type(frame[name], name)
    return types


def _looks_like_split(series: pd.Series) -> bool:
    values = set(series.dropna().astype(str).str.lower().unique())
    return bool(values) and values <= {"train", "val", "valid", "validation", "dev", "test"}

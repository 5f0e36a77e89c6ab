"""Read a table (CSV, Parquet, JSONL or a DataFrame) and infer each column's type."""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from plait.errors import DataError, PlaitWarning

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")
# Video files (decoded by content with PyAV). Animated GIFs stay images unless a column
# is declared video (`--type COL=video`): most GIFs in tables are still pictures.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
# Media Plait does not read: a column of such paths is ignored (with a warning), never
# fed to the model as categories, one per file.
OTHER_MEDIA_EXTENSIONS = (".m4a", ".aac", ".wma", ".heic", ".heif", ".avif", ".svg")
MEDIA_SHARE = 0.9  # a column is media when this share of its cells name such files
# A text column whose cells are numbers but for at most this share is taken for a
# numeric column with stray text (a warning names the stray cells).
MAX_STRAY_SHARE = 0.1
# A string column with at most this many distinct values (or this share of rows) is a
# category rather than free text; short strings with more distinct values are text.
MAX_CATEGORIES = 50
MAX_CATEGORY_SHARE = 0.2
_ID_NAME = re.compile(r"(^|[_\s])(id|uuid|index|key)$|Id$", re.IGNORECASE)
SPLIT_NAMES = ("split", "fold", "subset")
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
# A CSV header without a comma is split on the one of these it holds most (Excel in many
# locales writes ";"); csv.Sniffer fails on long lines and pandas' sep=None misreads a
# one-column file, while a table Plait can train on has two or more columns.
OTHER_SEPARATORS = (";", "\t", "|")


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
    twice = frame.columns[frame.columns.duplicated()]
    if len(twice):  # pandas renames a CSV's; Parquet and DataFrames keep them
        raise DataError(f"table {source} has several columns named {twice[0]!r}; rename them")
    frame = frame.reset_index(drop=True)
    return Table(frame, base.resolve(), source)


def _read_file(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"expected a table file, got a folder: {path}")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_SUFFIXES:
        raise DataError(
            f"{path.name} is a spreadsheet (Excel or OpenDocument), which Plait does not read; "
            "save it as CSV (UTF-8) or Parquet"
        )
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
        return _read_csv(path, "\t" if suffix in (".tsv", ".tab") else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"table {path.name} is empty") from None
    except UnicodeDecodeError as err:
        raise DataError(
            f"cannot read table {path}: it is not UTF-8 text (it holds byte {err.object[err.start]:#04x}); "
            "save it as CSV (UTF-8) or Parquet"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        msg = " ".join(str(err).split())[:200]
        raise DataError(f"cannot read table {path}: {msg}") from None


def _read_csv(path: Path, sep: str | None) -> pd.DataFrame:
    """`sep`, else a comma unless the header has none and another separator (see
    OTHER_SEPARATORS); a semicolon-separated file's numbers may have decimal commas.
    A header naming a column twice is warned of (pandas reads the second as NAME.1)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        header = file.readline()
    if sep is None:
        counts = {s: header.count(s) for s in OTHER_SEPARATORS}
        most = max(counts, key=counts.__getitem__)
        sep = most if "," not in header and counts[most] else ","
    names = next(csv.reader([header], delimiter=sep), [])
    frame = pd.read_csv(path, sep=sep)
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        renamed = ", ".join(repr(f"{name}.{i}") for i in range(1, names.count(name)))
        warnings.warn(
            f"the header of {path.name} names column {name!r} {names.count(name)} times; the later "
            f"ones are read as {renamed} (rename them in the file)",
            PlaitWarning,
            stacklevel=2,
        )
    return _decimal_commas(frame) if sep == ";" else frame


_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(,\d+)?$")


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every cell is a number written "1,5" become numbers."""
    for name in frame.columns:
        if ptypes.is_numeric_dtype(frame[name]):
            continue
        cells = frame[name].dropna().astype(str).str.strip()
        cells = cells[cells != ""]
        if len(cells) and cells.str.match(_DECIMAL_COMMA).all() and cells.str.contains(",").any():
            text = frame[name].astype(str).str.strip().str.replace(",", ".")
            frame[name] = pd.to_numeric(text, errors="coerce")
    return frame


def _cells(series: pd.Series) -> pd.Series:
    """The non-empty cells; stripped strings unless the column holds numbers or booleans."""
    values = series.dropna()
    if ptypes.is_string_dtype(series) or ptypes.is_object_dtype(series):
        values = values.astype(str).str.strip()
        values = values[values != ""]
    return values


def is_blank(series: pd.Series) -> bool:
    """True when every cell is empty (None, NaN, blank text)."""
    return len(_cells(series)) == 0


def _media_share(lower: pd.Series, extensions: tuple[str, ...]) -> bool:
    return bool(lower.str.endswith(extensions).mean() >= MEDIA_SHARE)


def infer_input_type(series: pd.Series, name: str) -> str:
    """One of image, audio, video, text, numeric, category, ignore (ids, empty columns,
    paths of media Plait does not read)."""
    if name.startswith("Unnamed: "):  # a saved DataFrame index, not data
        return "ignore"
    values = _cells(series)
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
    if _media_share(lower, IMAGE_EXTENSIONS):
        return "image"
    if _media_share(lower, AUDIO_EXTENSIONS):
        return "audio"
    if _media_share(lower, VIDEO_EXTENSIONS):
        return "video"
    if _media_share(lower, OTHER_MEDIA_EXTENSIONS):
        return "ignore"
    n_unique = values.nunique()
    if _ID_NAME.search(name) and n_unique == len(values):
        return "ignore"
    if n_unique <= MAX_CATEGORIES or n_unique <= MAX_CATEGORY_SHARE * len(values):
        # Few distinct values: a category, unless they are sentences.
        if values.str.split().str.len().mean() < 4:
            return "category"
    return "text"


def inference_doubt(series: pd.Series, name: str, type_: str) -> str | None:
    """Why `type_`, inferred for input column `name`, may not be what the user meant,
    with the fix, in one line (a PlaitWarning); None when there is no doubt."""
    if name.startswith("Unnamed: "):  # a saved index or a trailing separator, not data
        return None
    values = _cells(series)
    if len(values) == 0:
        return f"column {name!r} is empty in every row: ignored"
    if type_ == "ignore" and ptypes.is_string_dtype(values):
        lower = values.str.lower()
        found = [e for e in OTHER_MEDIA_EXTENSIONS if lower.str.endswith(e).any()]
        if found and _media_share(lower, OTHER_MEDIA_EXTENSIONS):
            return (
                f"column {name!r} holds {'/'.join(found)} file paths, which Plait does not read (images: "
                f"{' '.join(IMAGE_EXTENSIONS)}; audio: {' '.join(AUDIO_EXTENSIONS)}; video: "
                f"{' '.join(VIDEO_EXTENSIONS)}): not used as an input"
            )
    if type_ in ("category", "text") and ptypes.is_string_dtype(values):
        stray = values[pd.to_numeric(values, errors="coerce").isna()]
        if 0 < len(stray) <= MAX_STRAY_SHARE * len(values):
            cells = ", ".join(f"{v!r} (row {int(row) + 1})" for row, v in stray.iloc[:3].items())
            more = f" and {len(stray) - 3} more" if len(stray) > 3 else ""
            return (
                f"column {name!r} holds numbers but also {cells}{more}, so it is read as {type_}; "
                f"if it is numeric pass --type {name}=numeric (those cells are then bad numbers, "
                "see --on-bad-row)"
            )
    return None


def label_problem(series: pd.Series, name: str, type_: str) -> str | None:
    """Why label `name`, inferred as a class (`type_` category or binary), would train a
    meaningless classifier: file paths, or a different value in every row. None if fine."""
    if type_ not in ("category", "binary"):
        return None
    values = _cells(series)
    if ptypes.is_string_dtype(values):
        lower = values.str.lower()
        if _media_share(
            lower, (*IMAGE_EXTENSIONS, *AUDIO_EXTENSIONS, *VIDEO_EXTENSIONS, *OTHER_MEDIA_EXTENSIONS)
        ):
            return (
                f"label {name!r} holds file paths, which would make one class per file; "
                "choose the column to predict with --label"
            )
    if len(values) > 2 and values.nunique() == len(values):
        return (
            f"label {name!r} has a different value in each of its {len(values)} rows, so as classes it "
            f"teaches nothing; pass --type {name}=numeric for a number, or --type {name}=text for "
            "text to generate"
        )
    return None


def infer_target_type(series: pd.Series) -> str:
    """One of binary, category, numeric, multilabel, text for a label column.

    Cells holding lists (Parquet, JSONL) make a multilabel target; delimited strings
    ("a|b") are only multilabel when declared so (`--type COL=multilabel`). Sentences
    with too many distinct values to be categories (the rule of infer_input_type) are
    text to generate: captions, transcripts, translations."""
    values = series.dropna()
    if _looks_like_boxes(values):
        return "boxes"
    if values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "multilabel"
    n_unique = values.nunique()
    if n_unique == 2:
        return "binary"
    if len(values) and values.map(lambda v: isinstance(v, str)).all():
        many = n_unique > MAX_CATEGORIES and n_unique > MAX_CATEGORY_SHARE * len(values)
        if many and values.str.split().str.len().mean() >= 4:
            return "text"
    if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
        is_int = bool((values == values.round()).all())
        if not (is_int and n_unique <= 20):
            return "numeric"
    return "category"


def _looks_like_boxes(values: pd.Series) -> bool:
    """Every cell a list (a JSON list in a CSV), and most of the non-empty ones lists of
    objects [x0, y0, x1, y1, label]: a boxes target, whose processor then names any cell
    that is not. Nothing else is taken for one (a single box is declared: --type COL=box)."""
    lists = [_as_list(v) for v in values.tolist()]
    if not lists or any(v is None for v in lists):
        return False
    filled = [v for v in lists if len(v)]
    boxes = sum(all(_is_box(obj) for obj in v) for v in filled)
    return bool(filled) and boxes >= max(1, len(filled) / 2)


def _as_list(value: object) -> list | None:
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else None


def _is_box(obj: object) -> bool:
    return (
        isinstance(obj, (list, tuple, np.ndarray))
        and len(obj) == 5
        and all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in list(obj)[:4])
    )


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

"""On-disk cache of decoded columns: a column's `transform` output, reused across runs.

`TableDataset.from_frame` transforms every input column once per run; this makes the
costly ones (decoded and resized images, log-mel spectrograms, token ids) once per
*content*: a second `plait train`, another fusion in `plait benchmark`, or `plait
evaluate` on the same table reads the tensors back instead of decoding every file.

Layout: `<cache_home()>/decoded/<key>.safetensors` (`$PLAIT_CACHE_DIR/decoded`, else
`~/.cache/plait/decoded`), one file per column transform holding `values`, `present`,
`index` (when rows share items) and `bad_rows`; no pickle. The key is a blake2b hash
of the processor's kind and JSON state (fitted vocabulary, normalisation, sizes), the
cells, `on_bad_row`, and for media columns each distinct file's resolved path, size
and mtime (or that --data-root refuses it), so a refit with other settings, an edited
file or another folder never hits an old entry. Files are written whole and renamed
into place (plait.atomic); an unreadable or inconsistent one is ignored and
recomputed. Nothing is evicted: the folder grows by one file per distinct table and
preprocessing, and deleting it is always safe (`plait cache clear`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from plait.atomic import atomic_path
from plait.data.feature_cache import cache_home
from plait.data.paths import OutsideRootError, data_root, resolve_media
from plait.data.processors.base import Encoded, InputProcessor, is_empty

# Costly transforms; tabular is cheap.
CACHED_KINDS = frozenset({"image", "audio", "text", "video", "sound_track"})
MEDIA_KINDS = frozenset({"image", "audio", "video", "sound_track"})  # cells are file paths
_FORMAT = "plait-decoded-1"


def cache_dir() -> Path:
    return cache_home() / "decoded"


def cached_transform(
    processor: InputProcessor, values: pd.Series, column: str, on_bad_row: str, enabled: bool = True
) -> Encoded:
    """`processor.transform(values, column, on_bad_row)`, read from the cache when the same
    processor state, cells and files were transformed before, and stored otherwise.

    Left out (transformed directly): `enabled=False`, kinds other than image/audio/text
    (the pretrained FeatureProcessor has its own cache), and robustness perturbations.
    With on_bad_row="error" a bad cell raises inside `transform`, before anything is stored.
    """
    if not enabled or processor.kind not in CACHED_KINDS or processor.perturb is not None:
        return processor.transform(values, column, on_bad_row=on_bad_row)
    path = cache_dir() / f"{column_key(processor, values, on_bad_row)}.safetensors"
    hit = _read(path, len(values))
    if hit is not None:
        return hit
    encoded = processor.transform(values, column, on_bad_row=on_bad_row)
    _write(path, encoded)
    return encoded


def column_key(processor: InputProcessor, values: pd.Series, on_bad_row: str) -> str:
    """Hex blake2b of everything `transform`'s output depends on."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{_FORMAT}|{processor.kind}|{on_bad_row}|".encode())
    h.update(json.dumps(processor.state(), sort_keys=True, default=str).encode())
    raw = values.tolist()
    h.update(json.dumps([_cell(v) for v in raw]).encode())
    if processor.kind in MEDIA_KINDS:  # paths, resolved as the processors do
        for cell in dict.fromkeys(str(v).strip() for v in raw if not is_empty(v)):
            h.update(_file_stamp(processor.base_dir, cell).encode())
    return h.hexdigest()


def _cell(value: object) -> str | list[str] | None:
    """Empty cells (None, NaN, "") transform alike; other non-strings by type and repr."""
    if is_empty(value):
        return None
    return value if isinstance(value, str) else [type(value).__name__, repr(value)]


def _file_stamp(base_dir: Path, cell: str) -> str:
    """Resolved path, size and mtime (ns) of the file a cell names, as the processors
    find it (relative to `base_dir`, under --data-root if set). A missing file, or one
    the data root refuses, stamps as such: the same cell read unconfined misses."""
    try:
        path = resolve_media(cell, base_dir).resolve()
        st = path.stat()
    except OutsideRootError:
        return f"{cell}|outside {data_root()}\n"
    except (OSError, RuntimeError, ValueError):
        return f"{base_dir}|{cell}|missing\n"
    return f"{path}|{st.st_size}|{st.st_mtime_ns}\n"


def _read(path: Path, n_rows: int) -> Encoded | None:
    """The cached column, or None when absent, unreadable or inconsistent (recomputed)."""
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError):
        return None
    values, present, bad = tensors.get("values"), tensors.get("present"), tensors.get("bad_rows")
    index = tensors.get("index")
    if values is None or present is None or bad is None or present.shape != (n_rows,):
        return None
    if index is not None and (index.shape != (n_rows,) or (n_rows and int(index.max()) >= len(values))):
        return None
    if index is None and len(values) != n_rows:
        return None
    return Encoded(values, present, index, bad.tolist())


def _write(path: Path, encoded: Encoded) -> None:
    """Store `encoded` whole (temporary file, then rename); a full or read-only disk only warns."""
    tensors = {
        "values": encoded.values.contiguous(),
        "present": encoded.present.contiguous(),
        "bad_rows": torch.tensor(encoded.bad_rows, dtype=torch.int64),
    }
    if encoded.index is not None:
        tensors["index"] = encoded.index.contiguous()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": _FORMAT})
    except (OSError, SafetensorError, RuntimeError, ValueError) as err:
        warnings.warn(f"could not write the decode cache {path}: {err}", stacklevel=3)


def clear() -> tuple[int, int]:
    """Delete every cached column; returns (files, bytes) removed."""
    folder = cache_dir()
    files = [p for p in folder.glob("*.safetensors") if p.is_file()] if folder.is_dir() else []
    size = sum(p.stat().st_size for p in files)
    shutil.rmtree(folder, ignore_errors=True)
    return len(files), size


def usage() -> tuple[int, int]:
    """(files, bytes) held by the decode cache."""
    folder = cache_dir()
    files = list(folder.glob("*.safetensors")) if folder.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files if p.is_file())

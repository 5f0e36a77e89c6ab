"""The content hash of a training table: its cells and the bytes of its media files.

Recorded in a run's plait.json, so two runs can be checked to have seen the same data:
the same hash means the same rows, columns and cell values (in order) and the same
bytes in every image or audio file the table names, wherever the folder was moved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from plait.config import PlaitConfig
from plait.data.paths import OutsideRootError, resolve_media
from plait.data.processors.base import is_empty

_ROWS_PER_CHUNK = 10_000  # rows written as CSV at a time (bounds the memory)
_BYTES_PER_CHUNK = 1 << 20  # media file bytes read at a time


def media_columns(config: PlaitConfig) -> list[str]:
    """The input columns whose cells name image, audio or video files."""
    return [c.name for c in config.inputs if c.type in ("image", "audio", "video") and c.sound_of is None]


def fingerprint(frame: pd.DataFrame, base_dir: Path, media: list[str]) -> dict[str, Any]:
    """sha256 of the table (canonical CSV of the frame, columns in order) and of every
    distinct file named in the `media` columns (by cell value, sorted); a file that is
    missing, unreadable or outside the data root is hashed as absent and counted."""
    table = hashlib.sha256()
    for start in range(0, len(frame), _ROWS_PER_CHUNK) or [0]:
        chunk = frame.iloc[start : start + _ROWS_PER_CHUNK]
        table.update(chunk.to_csv(index=False, header=start == 0, lineterminator="\n").encode())
    names = sorted(
        {str(v).strip() for c in media if c in frame for v in frame[c].tolist() if not is_empty(v)}
    )
    files = hashlib.sha256()
    absent = 0
    for name in names:
        digest = _file_digest(name, base_dir)
        absent += digest is None
        files.update(f"{name}\0{digest or 'absent'}\n".encode())
    combined = hashlib.sha256(f"{table.hexdigest()}:{files.hexdigest()}".encode()).hexdigest()
    return {
        "sha256": combined,  # table and media together: compare this one
        "table_sha256": table.hexdigest(),
        "media_sha256": files.hexdigest(),
        "rows": len(frame),
        "columns": list(frame.columns),
        "media_files": len(names),
        "media_files_absent": absent,
    }


def _file_digest(name: str, base_dir: Path) -> str | None:
    try:
        path = resolve_media(name, base_dir)
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while block := file.read(_BYTES_PER_CHUNK):
                digest.update(block)
    except (OSError, ValueError, OutsideRootError):
        return None
    return digest.hexdigest()

"""Where the media paths of a table point, and the optional root they must stay in.

A media cell holds a path relative to the table's folder (or absolute). Tables from
elsewhere may name any file (`../../home/me/.ssh/id_rsa.png`, a symlink out), so a
user can confine every media read to one folder:

    with plait.data.paths.confined_to("/data/images"):
        plait.load(run).predict("table.csv")

(`plait --data-root DIR COMMAND ...` on the command line, or the environment variable
PLAIT_DATA_ROOT.)
A path is resolved (symlinks followed, `..` normalised) and a cell whose file lies
outside the root is a bad cell, handled by `on_bad_row` like an unreadable file.

The root is one value per process, not per thread: data loader workers (forked or
spawned) and threads see it too; the environment variable reaches spawned workers.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plait.errors import DataError

ENV_VAR = "PLAIT_DATA_ROOT"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)  # http://, https://, s3://, gs://, file://
_root: Path | None = None  # set by confined_to / set_data_root; else ENV_VAR


class OutsideRootError(DataError):
    """A media path that resolves outside the data root."""


def _checked(root: str | Path, source: str = "--data-root") -> Path:
    resolved = Path(root).expanduser().resolve()
    if not resolved.is_dir():
        raise DataError(f"{source} {root} is not a folder")
    return resolved


def data_root() -> Path | None:
    """The folder media paths must stay inside, or None when not confined."""
    if _root is not None:
        return _root
    env = os.environ.get(ENV_VAR, "").strip()
    return _checked(env, ENV_VAR) if env else None


def set_data_root(root: str | Path | None) -> None:
    """Confine media reads for the rest of this process (a data loader worker re-applies
    its parent's root with it); None keeps the environment's PLAIT_DATA_ROOT, if any."""
    global _root
    _root = _checked(root) if root is not None else None
    data_root()  # a bad PLAIT_DATA_ROOT is reported now, not at the first media file


@contextlib.contextmanager
def confined_to(root: str | Path | None) -> Iterator[Path | None]:
    """Within the block, every media path read from a table must resolve inside
    `root` (None: no change)."""
    global _root
    previous = _root
    if root is not None:
        _root = _checked(root)
    try:
        yield _root
    finally:
        _root = previous


def resolve_media(value: Any, base_dir: Path) -> Path:
    """The file a media cell names: relative to `base_dir`, or absolute. Under a data
    root it is returned resolved, and `OutsideRootError` is raised if it leaves it."""
    path = Path(str(value).strip())
    path = path if path.is_absolute() else Path(base_dir) / path
    root = data_root()
    if root is None:
        return path
    try:
        target = path.resolve()  # symlinks followed, ".." normalised
    except (OSError, RuntimeError, ValueError) as err:  # symlink loop, NUL byte
        raise OutsideRootError(f"{path} cannot be resolved ({type(err).__name__})") from None
    if not target.is_relative_to(root):
        raise OutsideRootError(f"{path} is outside --data-root {root}")
    return target


def media_path(value: Any, base_dir: Path, column: str, row: int, on_bad_row: str) -> Path | None:
    """`resolve_media` for a processor's `_load`: None for a refused cell when bad rows
    are skipped or treated as missing, else a DataError naming column and row (1-based).
    A URL is refused too: Plait reads local files and never fetches anything."""
    text = str(value).strip()
    if _URL.match(text):
        if on_bad_row != "error":
            return None
        url = text if len(text) <= 120 else text[:117] + "..."
        raise DataError(
            f"column {column!r}, row {row + 1}: {url} is a URL; Plait works offline and does not "
            "fetch URLs: download the files and put their local paths in the table"
        )
    try:
        return resolve_media(value, base_dir)
    except OutsideRootError as err:
        if on_bad_row != "error":
            return None
        raise OutsideRootError(f"column {column!r}, row {row + 1}: {err}") from None

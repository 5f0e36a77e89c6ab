"""Where a command may write, checked before any work starts.

Two promises, however a path is spelled (relative, `..`, `.`, symlinks):
- a command replaces only what it was asked to write: an existing run folder (or cv /
  benchmark folder) only under `--overwrite`, and never a folder Plait did not write;
  an existing file only under `--overwrite`;
- it never writes over what it reads: the table, its media files, the run folder.

Standard library only (like plait.atomic), so any layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.errors import PlaitError

# A folder holding one of these was written by Plait: a run folder, a `plait cv`
# folder (cv.json beside fold-K runs), a `plait benchmark` folder.
PLAIT_MARKERS = ("plait.json", "cv.json", "benchmark.csv")


def real(path: str | Path) -> Path:
    """`path` absolute, with `..` and every symlink resolved (it need not exist)."""
    return Path(os.path.realpath(path))


@dataclass
class Inputs:
    """What a command reads, resolved once: real path → what it is (for messages)."""

    files: dict[Path, str] = field(default_factory=dict)
    # Real folders of the media files: an output folder must not contain any of them.
    folders: dict[Path, str] = field(default_factory=dict)

    def add_file(self, path: str | Path, what: str) -> Inputs:
        self.files[real(path)] = what
        return self

    def add_folder(self, path: str | Path, what: str) -> Inputs:
        """A folder read as a whole (a shard folder, a run folder): every file in it is
        an input, and so is the folder itself."""
        folder = real(path)
        self.folders[folder] = what
        if folder.is_dir():
            for entry in folder.iterdir():
                self.files[real(entry)] = f"{what} ({entry.name})"
        return self

    def add_media(self, names: Iterable[str], base_dir: Path, column: str) -> Inputs:
        """Media cells (paths relative to `base_dir`, or absolute). Only their distinct
        folders are resolved (few, however many rows), then joined with the file name."""
        by_parent: dict[str, set[str]] = {}
        for name in names:
            path = os.path.join(base_dir, name.strip())
            by_parent.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
        for parent, files in by_parent.items():
            folder = real(parent)
            self.folders.setdefault(folder, f"a folder of {column!r} files")
            for name in files:
                self.files[folder / name] = f"a {column!r} file of the table"
        return self


def table_inputs(
    data: Any, frame: Any = None, base_dir: str | Path | None = None, media: Iterable[str] = ()
) -> Inputs:
    """The inputs of a command reading `data` (a table file, a shard folder; a URL or a
    DataFrame is nothing on disk) and, from `frame`, the files of its `media` columns."""
    inputs = Inputs()
    if isinstance(data, (str, Path)) and "://" not in str(data):
        if Path(data).is_dir():
            inputs.add_folder(data, "the input shard folder")
        else:
            inputs.add_file(data, "the input table")
    if frame is not None and base_dir is not None:
        for column in media:
            if column in frame:
                cells = [c for c in frame[column].tolist() if isinstance(c, str) and c.strip()]
                inputs.add_media(cells, Path(base_dir), column)  # raw bytes are no file
    return inputs


def is_plait_output(path: Path) -> bool:
    """True for a folder Plait wrote (see PLAIT_MARKERS)."""
    return path.is_dir() and any((path / marker).is_file() for marker in PLAIT_MARKERS)


def check_output_folder(out: str | Path, overwrite: bool, inputs: Inputs | None = None) -> None:
    """Refuse, in one line, an output folder that may not be (re)placed."""
    out = Path(out)
    target = real(out)
    cwd = real(Path.cwd())
    if target == cwd or cwd.is_relative_to(target):
        raise PlaitError(f"--out {out} is the current folder or holds it; name a new folder, e.g. runs/x")
    read = {**inputs.files, **inputs.folders} if inputs else {}
    for path, what in read.items():
        if path == target or path.is_relative_to(target):
            raise PlaitError(
                f"--out {out} holds {what} ({path}), which this command reads; choose another --out"
            )
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise PlaitError(f"output folder {out} already exists; choose another --out or pass --overwrite")
    if not is_plait_output(out):
        raise PlaitError(f"{out} exists and is not a Plait run; choose another --out")


def check_output_file(output: str | Path, overwrite: bool, inputs: Inputs | None = None) -> None:
    """Refuse, in one line, an output file that may not be written: one of the command's
    inputs (through a symlink, or spelled another way, too), a folder, or an existing
    file without `overwrite`."""
    output = Path(output)
    # The name in its real folder (what a rename replaces) and, for a symlink, its target.
    spellings = {real(output.parent) / output.name, real(output)}
    read = inputs.files if inputs else {}
    for path in spellings:
        what = read.get(path)
        if what is not None:
            raise PlaitError(f"--output {output} is {what}, which this command reads; choose another file")
    if output.is_dir():
        raise PlaitError(f"--output {output} is a folder; name a file to write")
    if (output.exists() or output.is_symlink()) and not overwrite:
        raise PlaitError(f"{output} exists; pass --overwrite to replace it, or choose another --output")

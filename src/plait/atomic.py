"""Atomic file writes: write a temporary sibling, rename it into place on success.

A reader never sees a half-written file, and a failed write leaves the previous
version intact. Light on purpose (standard library only), so `plait report` and the
runtime can use it without loading torch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; it replaces `path` when the
    block ends without error and is removed otherwise. It keeps `path`'s suffix, since
    some writers (np.save, torch.export) check or add one."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

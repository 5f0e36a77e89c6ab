"""`plait cache ...`: the decode cache ($PLAIT_CACHE_DIR/decoded)."""

from __future__ import annotations

from plait.cli import render


def clear() -> None:
    """Delete every decoded column (always safe: they are decoded again when needed)."""
    from plait.data import decode_cache

    files, size = decode_cache.clear()
    render.out.print(f"removed {files} file(s), {size / 2**20:.1f} MiB, from {decode_cache.cache_dir()}")

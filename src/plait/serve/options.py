"""Server settings: micro-batching, request limits, the folder media paths may point into."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from plait.errors import PlaitError


@dataclass(frozen=True)
class ServeOptions:
    # Rows per model call when concurrent requests are merged; 1 turns micro-batching
    # off (a request of many rows is still one call, never split).
    max_batch: int = 32
    # How long the first request of a batch waits for others to join it (0: take only
    # those already queued, i.e. the ones that arrived while the model was busy).
    max_wait_ms: float = 5.0
    # Media given as paths are read only from inside this folder; None refuses paths.
    allow_dir: Path | None = None
    # Largest request body, JSON (inline base64 media) or multipart (uploads); also the
    # largest file read from `allow_dir`.
    max_upload_mb: float = 10.0
    max_rows: int = 256  # rows in one request

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def checked(self) -> ServeOptions:
        """Validated, with `allow_dir` resolved (symlinks followed) once and for all."""
        if not (isinstance(self.max_batch, int) and self.max_batch >= 1):
            raise PlaitError(
                f"--max-batch must be an integer ≥ 1 (1: no micro-batching), got {self.max_batch!r}"
            )
        if not 0 <= self.max_wait_ms < math.inf:
            raise PlaitError(f"--max-wait-ms must be ≥ 0 and finite, got {self.max_wait_ms!r}")
        if not 0 < self.max_upload_mb < math.inf:
            raise PlaitError(f"--max-upload-mb must be > 0 and finite, got {self.max_upload_mb!r}")
        if not (isinstance(self.max_rows, int) and self.max_rows >= 1):
            raise PlaitError(f"max_rows must be an integer ≥ 1, got {self.max_rows!r}")
        allow = self.allow_dir
        if allow is not None:
            if not Path(allow).is_dir():
                raise PlaitError(f"--allow-dir must be an existing folder, got {str(allow)!r}")
            allow = Path(allow).resolve()
        return dataclasses.replace(self, allow_dir=allow)

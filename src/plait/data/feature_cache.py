"""On-disk cache of frozen-backbone features, shared by runs, folds and benchmarks.

Layout: `<root>/<backbone>-<weights hash>/part-*.safetensors`, each part holding
`keys` (n, 16) uint8 and `features` (n, D) float32. A key is a hash of the
preprocessing settings and the preprocessed input itself (the decoded, resized
pixels or the token ids), so a changed file, a changed preprocessing option or
changed weights (another folder) can never hit an old entry. Parts are written
whole to a temporary name and renamed, so a crash never leaves a torn part, and
concurrent writers only ever add parts.

The root is `$PLAIT_CACHE_DIR`, else `~/.cache/plait/features`. (Decoded columns,
data/decode_cache.py, go to `<cache_home()>/decoded`.)
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor


def cache_home() -> Path:
    """Plait's cache folder: `$PLAIT_CACHE_DIR`, else `~/.cache/plait`."""
    return Path(os.environ.get("PLAIT_CACHE_DIR") or Path.home() / ".cache" / "plait")


def cache_root() -> Path:
    """The feature cache: `$PLAIT_CACHE_DIR` itself (as documented), else `~/.cache/plait/features`."""
    return cache_home() if os.environ.get("PLAIT_CACHE_DIR") else cache_home() / "features"


def item_keys(values: Tensor, salt: str) -> list[bytes]:
    """One 16-byte key per row of `values` (N, …): hash(salt, dtype, shape, bytes)."""
    if len(values) == 0:
        return []
    prefix = f"{salt}|{values.dtype}|{tuple(values.shape[1:])}|".encode()
    flat = values.contiguous().reshape(len(values), -1)
    array = flat.view(torch.uint8).numpy() if flat.dtype != torch.bool else flat.numpy()
    return [hashlib.blake2b(prefix + row.tobytes(), digest_size=16).digest() for row in array]


class FeatureCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._index: dict[bytes, Tensor] | None = None

    @classmethod
    def open(cls, folder: Path) -> FeatureCache:
        """One instance per folder and process, so the parts are read from disk once."""
        if folder not in _OPEN:
            _OPEN[folder] = cls(folder)
        return _OPEN[folder]

    def _load(self) -> dict[bytes, Tensor]:
        if self._index is None:
            self._index = {}
            for part in sorted(self.folder.glob("part-*.safetensors")):
                try:
                    tensors = load_file(str(part))
                except (SafetensorError, OSError):  # unreadable: ignore it, recompute
                    continue
                for key, feature in zip(tensors["keys"], tensors["features"], strict=True):
                    self._index[key.numpy().tobytes()] = feature
        return self._index

    def get(self, keys: list[bytes]) -> dict[int, Tensor]:
        """Positions in `keys` that are cached → their feature vectors."""
        index = self._load()
        return {i: index[k] for i, k in enumerate(keys) if k in index}

    def put(self, keys: list[bytes], features: Tensor) -> None:
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        key_tensor = torch.frombuffer(bytearray(b"".join(keys)), dtype=torch.uint8).reshape(len(keys), 16)
        name = f"part-{uuid.uuid4().hex}.safetensors"
        tmp = self.folder / f".{name}.tmp"
        save_file({"keys": key_tensor, "features": features.float().contiguous()}, str(tmp))
        os.replace(tmp, self.folder / name)
        index = self._load()
        for key, feature in zip(keys, features, strict=True):
            index[key] = feature


_OPEN: dict[Path, FeatureCache] = {}

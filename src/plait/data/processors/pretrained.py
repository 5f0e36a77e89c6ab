"""Processors for pretrained encoders: the model's own tokenizer, and frozen features.

`FeatureProcessor` turns a frozen backbone into preprocessing: each distinct input
is preprocessed by its base processor, run through the backbone once and stored in
the feature cache; training then only sees (N, D) vectors, so an epoch costs what
the small fusion model costs. The backbone is loaded from its local source when
needed and never saved in the run folder; its weights hash is, and a run refuses
weights that changed since training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from plait.data.feature_cache import FeatureCache, cache_root, item_keys
from plait.data.processors.base import Encoded, InputProcessor, is_empty
from plait.data.processors.video import VideoProcessor
from plait.errors import ConfigError, RunFolderError
from plait.presets import AUGMENTATION


class HFTextProcessor(InputProcessor):
    """Strings → (N, L) int64 ids from the pretrained model's own `tokenizer.json`
    (special tokens added, truncated to `max_length`, padded with the model's pad id)."""

    kind = "hf_text"
    modality = "text"  # type: ignore[assignment]

    def __init__(
        self,
        encoder: str = "hf_text",
        path: str | None = None,
        max_length: int = 128,
        length_percentile: float = 99.0,
    ) -> None:
        self.encoder = encoder
        self.path = path
        self.max_length = max_length
        self.length_percentile = length_percentile
        self._tokenizer: Tokenizer | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from plait.encoders.pretrained.backbones import model_folder

            file = model_folder(self.encoder, self.path) / "tokenizer.json"
            if not file.is_file():
                raise ConfigError(
                    f"{file.parent} has no tokenizer.json; save the model's tokenizer there with "
                    "AutoTokenizer.from_pretrained(...).save_pretrained(folder)"
                )
            self._tokenizer = Tokenizer.from_file(str(file))
            self._tokenizer.no_padding()
            self._tokenizer.enable_truncation(self.max_length)
        return self._tokenizer

    def _pad_id(self) -> int:
        padding = json.loads(self.tokenizer.to_str()).get("padding") or {}
        if "pad_id" in padding:
            return int(padding["pad_id"])
        pad = self.tokenizer.token_to_id("[PAD]")
        return 0 if pad is None else pad

    def fit(self, values: pd.Series, column: str = "text", on_bad_row: str = "error") -> HFTextProcessor:
        texts = [str(v) for v in values.tolist() if not is_empty(v)]
        lengths = [len(e.ids) for e in self.tokenizer.encode_batch(texts[:10000])] or [1]
        self.max_length_ = max(
            2, min(self.max_length, math.ceil(np.percentile(lengths, self.length_percentile)))
        )
        self.pad_id_ = self._pad_id()
        return self

    def transform(self, values: pd.Series, column: str = "text", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        present = [not is_empty(v) for v in values.tolist()]
        texts = [str(v) if p else "" for v, p in zip(values.tolist(), present, strict=True)]
        ids = np.full((len(texts), self.max_length_), self.pad_id_, dtype=np.int64)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            seq = encoding.ids[: self.max_length_]
            ids[row, : len(seq)] = seq
        return Encoded(torch.from_numpy(ids), torch.tensor(present, dtype=torch.bool))

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"pad_id": self.pad_id_}


class FeatureProcessor(InputProcessor):
    """Base preprocessing → frozen backbone → (N, D) pooled features, cached on disk."""

    kind = "features"

    def __init__(
        self,
        base: dict[str, Any],
        backbone: dict[str, Any],
        batch_size: int = 64,
        cache_dir: str | None = None,
    ) -> None:
        self.base = base  # {"kind": "image" | "hf_text", "params": {...}}
        self.backbone = backbone  # {"name": ..., "path": ..., "model": ...}
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self._base: InputProcessor | None = None
        self._net: Any = None
        self.cache_stats = (0, 0)  # (hits, misses) of the latest transform

    def _base_processor(self) -> InputProcessor:
        if self._base is None:
            self._base = _base_kind(self.base["kind"]).create(self.base.get("params", {}), "features")
        self._base.base_dir = self.base_dir
        self._base.perturb = self.perturb
        return self._base

    def _network(self) -> Any:
        if self._net is None:
            from plait.encoders.pretrained.backbones import load_backbone

            self._net = load_backbone(**self.backbone).eval()
        return self._net

    def _check_weights(self) -> None:
        """The weights on disk must be those the run was trained with (hash of the files,
        memoised; the model itself is only loaded when a feature is not cached)."""
        from plait.encoders.pretrained.backbones import weight_files, weights_hash

        files = weight_files(**self.backbone)
        current = weights_hash(files) if files else None
        if current != self.weights_hash_:
            where = ", ".join(str(f) for f in files) or self.backbone.get("path")
            raise RunFolderError(
                f"the weights of encoder {self.backbone['name']!r} ({where}) changed since this run "
                f"was trained (hash {current}, trained with {self.weights_hash_}); point path: at the "
                "original weights or train again"
            )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "weights_hash_")

    @property
    def modality(self) -> str:
        return self._base_processor().modality

    def fit(self, values: pd.Series, column: str = "features", on_bad_row: str = "error") -> FeatureProcessor:
        augment = [k for k in AUGMENTATION if self.base.get("params", {}).get(k)]
        if augment:  # a cached feature is computed once, so it cannot vary per epoch
            raise ConfigError(
                f"column {column!r}: {', '.join(augment)} cannot apply to cached features; "
                "set cache: false (or finetune) on the encoder to augment"
            )
        self._base_processor().fit(values, column, on_bad_row=on_bad_row)
        net = self._network()
        self.weights_hash_ = net.weights_hash
        self.dim_ = net.out_dim
        return self

    @property
    def per_frame(self) -> bool:
        """A video base: features per stored frame, (N, frames, 1 + D) with the mask first."""
        return self.base["kind"] == "video"

    def transform(self, values: pd.Series, column: str = "features", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        self._check_weights()
        base = self._base_processor()
        encoded = base.transform(values, column, on_bad_row=on_bad_row)
        items = encoded.values  # (V, …) distinct items (images, clips) or one per row (text)
        used = torch.zeros(len(items), dtype=torch.bool)
        used[encoded.index[encoded.present] if encoded.index is not None else encoded.present] = True
        rows = used.nonzero().squeeze(1)
        if not self.per_frame:
            features = torch.zeros(len(items), self.dim_)
            features[rows] = self._features(base, items[rows], lambda x: base.to_model(x, False))
            return Encoded(features, encoded.present, encoded.index, encoded.bad_rows)
        # Video: every real stored frame is one backbone input, cached on its own.
        assert isinstance(base, VideoProcessor)
        features = torch.zeros(len(items), items.shape[1], 1 + self.dim_)  # (V, M, 1 + D)
        clips = items[rows]  # (U, M, 4, S, S)
        real = clips[:, :, 0, 0, 0] > 0  # (U, M)
        per_frame = self._features(base, clips[real][:, 1:], base.normalise)  # (real frames, D)
        filled = torch.zeros(len(rows), items.shape[1], 1 + self.dim_)
        filled[real] = torch.cat([torch.ones(len(per_frame), 1), per_frame], dim=1)
        features[rows] = filled
        return Encoded(features, encoded.present, encoded.index, encoded.bad_rows)

    def _features(self, base: InputProcessor, items: torch.Tensor, prepare: Any) -> torch.Tensor:
        """(n, …) preprocessed items → (n, D) backbone features, from the cache where
        they were computed before (`prepare`: stored item → the backbone's input)."""
        features = torch.zeros(len(items), self.dim_)
        salt = json.dumps([self.backbone, self.weights_hash_, base.state()], sort_keys=True, default=str)
        keys = item_keys(items, salt)
        folder = Path(self.cache_dir) if self.cache_dir else cache_root()
        cache = FeatureCache.open(folder / f"{self.backbone['name']}-{self.weights_hash_}")
        found = cache.get(keys)
        for pos, feature in found.items():
            features[pos] = feature
        todo = [i for i in range(len(keys)) if i not in found]
        # Duplicates (the same question asked of many images) are computed once.
        unique: dict[bytes, list[int]] = {}
        for i in todo:
            unique.setdefault(keys[i], []).append(i)
        first = [positions[0] for positions in unique.values()]
        computed = self._compute(prepare, items[first]) if first else torch.zeros(0, self.dim_)
        for vector, positions in zip(computed, unique.values(), strict=True):
            features[positions] = vector
        cache.put(list(unique), computed)
        self.cache_stats = (len(found), len(todo))
        return features

    @torch.inference_mode()
    def _compute(self, prepare: Any, items: torch.Tensor) -> torch.Tensor:
        net = self._network()
        out = [
            net(prepare(items[i : i + self.batch_size])).pooled for i in range(0, len(items), self.batch_size)
        ]
        return torch.cat(out).float()

    def to_model(self, values: torch.Tensor, training: bool) -> torch.Tensor:
        """Video: one stored frame's features per segment (TSN, as VideoProcessor)."""
        if not self.per_frame:
            return values
        base = self._base_processor()
        assert isinstance(base, VideoProcessor)
        return base.select_frames(values, training)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"feature_dim": self.dim_}

    def state(self) -> dict[str, Any]:
        self.check_fitted()
        return {
            "kind": self.kind,
            "params": self.get_params(),
            "fitted": {"weights_hash_": self.weights_hash_, "dim_": self.dim_},
            "base": self._base_processor().state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureProcessor:
        obj = super().from_state(state)
        obj._base = _base_kind(state["base"]["kind"]).from_state(state["base"])
        return obj


def _base_kind(kind: str) -> type[InputProcessor]:
    """The processor that decodes a cached encoder's raw input (named here rather than
    taken from plait.data.processors, which imports this module)."""
    from plait.data.processors.audio import AudioProcessor  # lazily: audio pulls in librosa
    from plait.data.processors.image import ImageProcessor

    kinds: dict[str, type[InputProcessor]] = {
        "image": ImageProcessor,
        "video": VideoProcessor,
        "audio": AudioProcessor,
        "hf_text": HFTextProcessor,
    }
    if kind not in kinds:
        raise ValueError(
            f"cached features cannot wrap a {kind!r} processor; expected one of {', '.join(kinds)}"
        )
    return kinds[kind]

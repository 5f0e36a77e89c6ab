"""Input corruptions for robustness evaluation, one severity scale for all modalities.

A corruption takes a noise level in [0, 1] (0 = clean, 1 = the strongest setting)
and a seeded generator, the way MultiBench (Liang et al. 2021) sweeps noise levels
per modality. Text, numbers and categories are corrupted in the raw table cells;
images, video and audio right after decoding, through the processor's `perturb` hook, so
the corrupted input goes through exactly the preprocessing a clean one does.

| kind | corruption | at level s |
|---|---|---|
| image | `gaussian_noise` | pixel noise, σ = 0.5·s of the 0–255 range |
| image | `blur` | Gaussian blur, σ = s·size/16 pixels |
| video | `dropped_frames` | each stored frame dropped (masked out) with probability s; one is kept |
| video | `gaussian_noise` | pixel noise on every frame, σ = 0.5·s of the 0–255 range |
| audio | `white_noise` | additive white noise at SNR 30 − 40·s dB (s = 1: −10 dB) |
| text | `word_dropout` | each word dropped with probability s (one word always kept) |
| text | `typos` | each word gets one typo (swap, drop, double, replace) with probability s |
| numeric | `gaussian_noise` | + s × the column's standard deviation × N(0, 1) |
| category | `swap` | replaced by another value of the column with probability s |
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.v2 import functional as TF

from plait.data.processors.base import is_empty

Perturb = Callable[[Any], Any]


@dataclass(frozen=True)
class Corruption:
    """`cells(values, level, rng)` corrupts raw table cells; `decoded(level, rng)` makes
    a per-item hook for image/audio processors. Exactly one is set."""

    name: str
    cells: Callable[[pd.Series, float, np.random.Generator], pd.Series] | None = None
    decoded: Callable[[float, np.random.Generator], Perturb] | None = None


# -- images: uint8 (C, H, W) after decoding and resizing -----------------------------
def image_noise(level: float, rng: np.random.Generator) -> Perturb:
    def apply(image: np.ndarray) -> np.ndarray:
        noisy = image.astype(np.float32) + rng.normal(0.0, 127.5 * level, image.shape)
        return np.clip(noisy, 0, 255).round().astype(np.uint8)

    return apply


def image_blur(level: float, rng: np.random.Generator) -> Perturb:
    def apply(image: np.ndarray) -> np.ndarray:
        sigma = level * image.shape[-1] / 16
        if sigma <= 0:
            return image
        kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * (min(image.shape[-2:]) // 2) - 1)
        blurred = TF.gaussian_blur(torch.from_numpy(image.copy()), [kernel, kernel], [sigma, sigma])
        return blurred.numpy()

    return apply


# -- audio: mono float32 waveform after resampling ------------------------------------
def white_noise(level: float, rng: np.random.Generator) -> Perturb:
    snr_db = 30.0 - 40.0 * level

    def apply(wave: np.ndarray) -> np.ndarray:
        power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-8
        noise_std = math.sqrt(power / 10 ** (snr_db / 10))
        return (wave + rng.normal(0.0, noise_std, wave.shape)).astype(np.float32)

    return apply


# -- video: uint8 (frames, 1 + 3, H, W) after decoding, channel 0 the real-frame mask ----
def dropped_frames(level: float, rng: np.random.Generator) -> Perturb:
    def apply(clip: np.ndarray) -> np.ndarray:
        real = np.flatnonzero(clip[:, 0, 0, 0])
        if len(real) < 2:
            return clip
        drop = real[rng.random(len(real)) < level]
        if len(drop) == len(real):  # an empty clip would be a missing modality, another test
            drop = np.delete(drop, int(rng.integers(len(drop))))
        clip = clip.copy()
        clip[drop] = 0
        return clip

    return apply


def video_noise(level: float, rng: np.random.Generator) -> Perturb:
    noise = image_noise(level, rng)

    def apply(clip: np.ndarray) -> np.ndarray:
        clip = clip.copy()
        real = clip[:, 0, 0, 0] > 0
        clip[real, 1:] = noise(clip[real, 1:])
        return clip

    return apply


# -- raw cells -------------------------------------------------------------------------
def word_dropout(values: pd.Series, level: float, rng: np.random.Generator) -> pd.Series:
    def apply(text: str) -> str:
        words = text.split()
        kept = [w for w in words if rng.random() >= level]
        # An emptied cell would read as a missing modality, which is a different test.
        return " ".join(kept) if kept else words[int(rng.integers(len(words)))]

    return _map_text(values, apply)


def typos(values: pd.Series, level: float, rng: np.random.Generator) -> pd.Series:
    letters = string.ascii_lowercase

    def typo(word: str) -> str:
        if len(word) < 2:
            return word
        i = int(rng.integers(len(word) - 1))
        kind = int(rng.integers(4))
        if kind == 0:  # swap two neighbours
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:  # drop a letter
            return word[:i] + word[i + 1 :]
        if kind == 2:  # double a letter
            return word[: i + 1] + word[i] + word[i + 1 :]
        return word[:i] + letters[int(rng.integers(26))] + word[i + 1 :]  # replace one

    def apply(text: str) -> str:
        return " ".join(typo(w) if rng.random() < level else w for w in text.split())

    return _map_text(values, apply)


def _map_text(values: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    return values.map(lambda v: v if is_empty(v) else fn(str(v)))


def numeric_noise(values: pd.Series, level: float, rng: np.random.Generator) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    std = float(numbers.std()) if numbers.notna().sum() > 1 else 0.0
    noise = rng.normal(0.0, level * (std if std > 0 else 1.0), len(numbers))
    return numbers + noise  # NaN (missing) stays NaN


def category_swap(values: pd.Series, level: float, rng: np.random.Generator) -> pd.Series:
    present = [v for v in values.tolist() if not is_empty(v)]
    choices = pd.unique(pd.Series(present, dtype=object)).tolist()
    if len(choices) < 2:
        return values

    def apply(value: Any) -> Any:
        if is_empty(value) or rng.random() >= level:
            return value
        others = [c for c in choices if c != value]
        return others[int(rng.integers(len(others)))]

    return values.map(apply)


CORRUPTIONS: dict[str, list[Corruption]] = {
    "image": [Corruption("gaussian_noise", decoded=image_noise), Corruption("blur", decoded=image_blur)],
    "audio": [Corruption("white_noise", decoded=white_noise)],
    "video": [
        Corruption("dropped_frames", decoded=dropped_frames),
        Corruption("gaussian_noise", decoded=video_noise),
    ],
    "text": [Corruption("word_dropout", cells=word_dropout), Corruption("typos", cells=typos)],
    "numeric": [Corruption("gaussian_noise", cells=numeric_noise)],
    "category": [Corruption("swap", cells=category_swap)],
}
"""Corruptions per column kind (a tabular group uses its members' kinds)."""

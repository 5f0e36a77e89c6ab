"""Corruptions: severity grows with the level, level 0 is clean, empty cells stay empty."""

import numpy as np
import pandas as pd
import pytest

from plait.evaluation import corruptions as C


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_image_noise_grows_with_level_and_keeps_uint8():
    image = np.full((3, 16, 16), 128, dtype=np.uint8)
    assert np.array_equal(C.image_noise(0.0, rng())(image), image)
    spread = [C.image_noise(s, rng())(image).astype(float).std() for s in (0.2, 0.6, 1.0)]
    assert spread[0] < spread[1] < spread[2]
    noisy = C.image_noise(0.5, rng())(image)
    assert noisy.dtype == np.uint8 and noisy.shape == image.shape


def test_blur_smooths_edges_more_at_higher_levels():
    image = np.zeros((1, 32, 32), dtype=np.uint8)
    image[:, :, 16:] = 255
    edge = [np.abs(np.diff(C.image_blur(s, rng())(image).astype(float), axis=2)).max() for s in (0.2, 1.0)]
    assert 255 > edge[0] > edge[1]
    assert np.array_equal(C.image_blur(0.0, rng())(image), image)


@pytest.mark.parametrize("level", [0.25, 0.5, 1.0])
def test_white_noise_hits_its_snr(level: float):
    t = np.arange(160000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noisy = C.white_noise(level, rng())(wave)
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((noisy - wave) ** 2))
    assert abs(snr - (30 - 40 * level)) < 0.2 and noisy.dtype == np.float32


def test_word_dropout_keeps_a_word_and_empty_cells():
    texts = pd.Series(["one two three four five six seven eight", "", None, "solo"])
    out = C.word_dropout(texts, 1.0, rng())
    assert len(out[0].split()) == 1 and out[0] in texts[0].split()
    assert out[1] == "" and pd.isna(out[2]) and out[3] == "solo"
    half = C.word_dropout(pd.Series([" ".join(["w"] * 1000)]), 0.5, rng())[0]
    assert 400 < len(half.split()) < 600


def test_typos_change_words_at_the_given_rate():
    texts = pd.Series(["alpha bravo charlie delta echo foxtrot golf hotel"])
    assert C.typos(texts, 0.0, rng())[0] == texts[0]
    changed = C.typos(texts, 1.0, rng())[0].split()
    assert sum(a != b for a, b in zip(changed, texts[0].split(), strict=True)) >= 6


def test_numeric_noise_is_scaled_to_the_column_and_keeps_missing():
    values = pd.Series(np.linspace(0, 1000, 2001).tolist() + [None])
    out = C.numeric_noise(values, 0.5, rng())
    assert np.isnan(out.iloc[-1])
    diff = (out - values).dropna()
    assert abs(diff.std() - 0.5 * values.std()) < 0.05 * values.std()


def test_category_swap_uses_other_values_of_the_column():
    values = pd.Series(["a", "b", "c", None] * 50)
    out = C.category_swap(values, 1.0, rng())
    present = values.notna()
    assert (out[present] != values[present]).all() and set(out[present]) <= {"a", "b", "c"}
    assert out[~present].isna().all()
    assert C.category_swap(values, 0.0, rng()).equals(values)


def test_same_seed_same_noise():
    texts = pd.Series(["the quick brown fox jumps over the lazy dog"] * 5)
    assert C.typos(texts, 0.5, rng(3)).equals(C.typos(texts, 0.5, rng(3)))
    assert not C.typos(texts, 0.5, rng(3)).equals(C.typos(texts, 0.5, rng(4)))


def test_every_input_kind_has_corruptions():
    assert set(C.CORRUPTIONS) == {"image", "audio", "video", "text", "numeric", "category"}


def video_clip() -> np.ndarray:
    """uint8 (6, 4, 8, 8): 5 real frames (channel 0 the mask), the last one padding."""
    clip = np.full((6, 4, 8, 8), 100, np.uint8)
    clip[:, 0] = 255
    clip[5] = 0
    return clip


def test_dropped_frames_mask_frames_and_keep_one():
    clip = video_clip()
    assert np.array_equal(C.dropped_frames(0.0, rng())(clip), clip)
    for seed in range(5):
        out = C.dropped_frames(1.0, rng(seed))(clip)
        real = out[:, 0, 0, 0] > 0
        assert real.sum() == 1 and not real[5]  # one real frame kept, padding untouched
        assert (out[~real] == 0).all()
    half = [C.dropped_frames(0.5, rng(s))(clip)[:, 0, 0, 0].astype(bool).sum() for s in range(40)]
    assert 1.5 < np.mean(half) < 3.5


def test_video_noise_leaves_the_mask_and_padding_alone():
    clip = video_clip()
    out = C.video_noise(1.0, rng())(clip)
    assert np.array_equal(out[:, 0], clip[:, 0]) and (out[5] == 0).all()
    assert abs(out[:5, 1:].astype(float) - 100).mean() > 20

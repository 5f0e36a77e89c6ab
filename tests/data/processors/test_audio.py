"""AudioProcessor on small files written in the test (sine tones via soundfile)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from plait.data.processors import AudioProcessor
from plait.errors import DataError


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def clips(tmp_path: Path) -> pd.Series:
    sf.write(tmp_path / "a.wav", tone(1.0, 8000), 8000)
    stereo = np.stack([tone(0.5, 22050), tone(0.5, 22050, 880)], axis=1)
    sf.write(tmp_path / "b.flac", stereo, 22050)
    sf.write(tmp_path / "c.ogg", tone(0.25, 16000), 16000, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "d.mp3", tone(0.75, 24000), 24000, format="MP3", subtype="MPEG_LAYER_III")
    # A WAV with a misleading extension: read by content.
    sf.write(tmp_path / "e.dat", tone(0.5, 8000), 8000, format="WAV")
    return pd.Series(["a.wav", "b.flac", "c.ogg", "d.mp3", "e.dat", ""])


def fitted(folder: Path, values: pd.Series, **params) -> AudioProcessor:
    proc = AudioProcessor(sample_rate=8000, n_mels=16, **params)
    proc.base_dir = folder
    return proc.fit(values, "audio")


def test_every_format_decodes_resamples_and_pads(tmp_path: Path, clips: pd.Series):
    proc = fitted(tmp_path, clips, duration=1.0)
    enc = proc.transform(clips, "audio")
    frames = 8000 // proc.hop + 1
    assert enc.values.shape == (6, 17, frames)  # 5 clips + placeholder, mask row + 16 mels
    assert enc.present.tolist() == [True] * 5 + [False]
    values, _ = enc.take(torch.arange(6))
    real = values[:, 0].sum(1)  # real frames per clip, from the mask row
    assert real[0] == frames - 1  # 1 s fills the window (the last frame starts past the end)
    # 0.5 s (resampled 22.05 kHz → 8 kHz), 0.25 s, 0.75 s, 0.5 s
    for i, seconds in ((1, 0.5), (2, 0.25), (3, 0.75), (4, 0.5)):
        assert abs(real[i] - seconds * 8000 / proc.hop) <= 3, (i, real[i])
    assert real[5] == 0 and values[5].abs().sum() == 0  # missing → zero placeholder
    # Padded frames hold zeros, real frames are normalised log-mel values.
    assert values[2, 1:, int(real[2]) + 1 :].abs().sum() == 0


def test_resampling_keeps_pitch(tmp_path: Path):
    sf.write(tmp_path / "hi.wav", tone(1.0, 44100, 2000), 44100)
    sf.write(tmp_path / "lo.wav", tone(1.0, 8000, 300), 8000)
    values = pd.Series(["hi.wav", "lo.wav"])
    mel = fitted(tmp_path, values).transform(values, "audio").values[1:, 1:]  # (2, 16, T)
    peak = mel.mean(2).argmax(1)
    assert peak[0] > peak[1]  # 2 kHz lands in a higher mel band than 300 Hz


def test_stereo_is_mixed_to_mono(tmp_path: Path):
    wave = tone(0.5, 8000)
    sf.write(tmp_path / "cancel.wav", np.stack([wave, -wave], axis=1), 8000)
    sf.write(tmp_path / "mono.wav", wave, 8000)
    proc = fitted(tmp_path, pd.Series(["mono.wav"]))
    assert proc._load("cancel.wav", "audio", 0, "error").max() == 0.0  # L + R cancel
    assert np.allclose(proc._load("mono.wav", "audio", 0, "error"), wave, atol=1e-4)


def test_duration_is_fitted_from_training_clips(tmp_path: Path, clips: pd.Series):
    proc = fitted(tmp_path, clips, duration_percentile=50)
    assert proc.duration_ == pytest.approx(0.5, abs=0.01)
    assert fitted(tmp_path, clips).duration_ == pytest.approx(1.0, abs=0.02)


def test_spec_augment_only_in_training(tmp_path: Path, clips: pd.Series):
    proc = fitted(tmp_path, clips, time_mask=5, freq_mask=4)
    values = proc.transform(clips, "audio").values[1:]
    assert torch.equal(proc.to_model(values, training=False), values)
    torch.manual_seed(0)
    augmented = proc.to_model(values, training=True)
    assert torch.equal(augmented[:, 0], values[:, 0])  # the mask row is never touched
    assert (augmented[:, 1:] != values[:, 1:]).any()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "audio file not found"),
        (b"this is plain text, not audio", "not a readable audio file"),
        ("truncated", "not a readable audio file"),
        ("empty", "not a readable audio file .*0 samples"),
    ],
)
def test_bad_files_name_column_row_and_path(tmp_path: Path, clips: pd.Series, content, match):
    proc = fitted(tmp_path, clips)
    bad = tmp_path / "bad.wav"
    if content == "truncated":
        sf.write(bad, tone(1.0, 8000), 8000)
        bad.write_bytes(bad.read_bytes()[:30])  # cut inside the header
    elif content == "empty":
        sf.write(bad, np.zeros(0, dtype=np.float32), 8000)
    elif content is not None:
        bad.write_bytes(content)
    values = pd.Series(["a.wav", "bad.wav"])
    with pytest.raises(DataError, match=rf"column 'voice', row 2: {match}.*bad.wav"):
        proc.transform(values, "voice")
    enc = proc.transform(values, "voice", on_bad_row="missing")
    assert enc.present.tolist() == [True, False] and enc.bad_rows == [1]

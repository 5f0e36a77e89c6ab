"""Audio processor: decode (soundfile), mono, resample (soxr), pad/crop, log-mel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd
import soundfile as sf
import soxr
import torch
from torch import Tensor

from plait.data.paths import media_path
from plait.data.processors.base import Encoded, InputProcessor, is_empty, load_distinct
from plait.errors import DataError

_FIT_SAMPLE = 256  # clips read to fit the duration and the log-mel statistics
_CHUNK = 64  # clips per STFT batch (bounds the memory of raw waveforms)
_MAX_FITTED_SECONDS = 30.0
# Longer files are refused (from the header, before decoding): decoded clips are held
# whole as mono float32, so 600 s bounds one clip to 115 MB at 48 kHz.
MAX_SECONDS = 600.0
MAX_RATE = 384_000  # Hz; the highest rate in use (DXD), which also bounds memory
_BLOCK = 1 << 20  # samples (all channels) decoded at a time
# Samples are nominally within ±1; far past this the spectrogram overflows float32.
_MAX_AMPLITUDE = 1e6


class TooLong(Exception):
    """A file over `max_seconds` (reported as a bad cell)."""


class AudioProcessor(InputProcessor):
    """Paths → (1 + n_mels, frames) float: row 0 is the real-frame mask, rows 1.. the
    normalised log-mel spectrogram (zero on padded frames).

    Files are decoded by content with soundfile (WAV, FLAC, OGG, MP3), mixed to mono,
    resampled to `sample_rate` with soxr and padded/cropped to `duration` seconds
    (fitted as the `duration_percentile` of training clip lengths when None).
    Spectrograms are computed once per distinct file; SpecAugment-style time and
    frequency masks are applied per batch on the training split only.
    """

    kind = "audio"

    def __init__(
        self,
        sample_rate: int = 16000,
        duration: float | None = None,
        duration_percentile: float = 99.0,
        n_mels: int = 64,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        time_mask: int = 0,
        freq_mask: int = 0,
        num_masks: int = 2,
        features: str = "log_mel",
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        self.sample_rate = sample_rate
        self.duration = duration
        self.duration_percentile = duration_percentile
        self.n_mels = n_mels
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.num_masks = num_masks
        self.features = features  # "log_mel", or "waveform" for pretrained speech models
        self.max_seconds = max_seconds  # longer files are bad cells (memory guard)
        self._filters: Tensor | None = None

    # -- sizes ---------------------------------------------------------------
    @property
    def hop(self) -> int:
        return max(1, round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 2 ** math.ceil(math.log2(self.sample_rate * self.window_ms / 1000))

    @property
    def num_samples(self) -> int:
        # The STFT reflect-pads n_fft // 2 samples each side, which needs a longer input.
        shortest = self.n_fft // 2 + 1 if self.features == "log_mel" else self.hop
        return max(self.hop, shortest, round(self.duration_ * self.sample_rate))

    # -- decoding -------------------------------------------------------------
    def _load(self, value: Any, column: str, row: int, on_bad_row: str) -> np.ndarray | None:
        """One cell → mono float32 waveform at `sample_rate`; None when skipping."""
        if (path := media_path(value, self.base_dir, column, row, on_bad_row)) is None:
            return None  # outside --data-root, and bad rows are skipped or missing
        if not path.is_file():
            problem = "audio file not found"
        else:
            try:
                wave, rate = self._read_mono(path)
                if len(wave) == 0:
                    raise ValueError("it holds 0 samples")
                if rate != self.sample_rate:
                    wave = soxr.resample(wave, rate, self.sample_rate).astype(np.float32)
                if len(wave) == 0:  # shorter than one sample period at the target rate
                    raise ValueError(f"it holds less than one sample at {self.sample_rate} Hz")
                if not np.isfinite(wave).all():
                    raise ValueError("it holds non-finite samples")
                if (peak := float(np.abs(wave).max())) > _MAX_AMPLITUDE:
                    raise ValueError(f"its samples reach {peak:.3g}, far outside -1..1")
                return wave if self.perturb is None else self.perturb(wave)
            except TooLong as err:
                problem = (
                    f"audio too long ({err} s); the limit is max_seconds={self.max_seconds:g} "
                    "(an audio preprocessing option)"
                )
            except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError) as err:
                detail = " ".join(str(err).split())[:120]
                problem = f"not a readable audio file ({detail})"
        if on_bad_row != "error":
            return None
        raise DataError(f"column {column!r}, row {row + 1}: {problem}: {path}")

    def _read_mono(self, path: Path) -> tuple[np.ndarray, int]:
        """Decode to (samples,) mono float32 at the file's rate, block by block, holding
        at most `max_seconds` (refused from the header before decoding)."""
        with sf.SoundFile(path) as file:  # the header only
            rate = file.samplerate
            if not 1 <= rate <= MAX_RATE:
                raise ValueError(f"its sample rate {rate} Hz is outside 1 to {MAX_RATE} Hz")
            if file.frames > self.max_seconds * rate:
                raise TooLong(f"{file.frames / rate:,.0f}")
            step = max(1, _BLOCK // file.channels)
            parts = []  # reads stop at the header's frame count, so the limit holds
            while len(block := file.read(step, dtype="float32", always_2d=True)):
                parts.append(block.mean(axis=1))  # (frames, channels) → mono
        return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate

    def fit(self, values: pd.Series, column: str = "audio", on_bad_row: str = "error") -> AudioProcessor:
        if self.features not in ("log_mel", "waveform"):
            raise DataError(
                f"column {column!r}: audio features must be log_mel or waveform, got {self.features!r}"
            )
        if not isinstance(self.max_seconds, (int, float)) or not self.max_seconds > 0:
            raise DataError(
                f"column {column!r}: audio max_seconds must be positive, got {self.max_seconds!r}"
            )
        cells = values[[not is_empty(v) for v in values.tolist()]].drop_duplicates()
        sample = cells.sample(min(_FIT_SAMPLE, len(cells)), random_state=0) if len(cells) else cells
        waves = [w for i, v in sample.items() if (w := self._load(v, column, i, on_bad_row)) is not None]
        lengths = [len(w) / self.sample_rate for w in waves] or [1.0]
        if self.duration is not None:
            self.duration_ = float(self.duration)
        else:
            fitted = float(np.percentile(lengths, self.duration_percentile))
            self.duration_ = min(_MAX_FITTED_SECONDS, fitted)
        self.mean_, self.std_ = 0.0, 1.0
        if waves and self.features == "log_mel":
            mel, mask = self._log_mel(waves)
            real = mel[:, 1:].transpose(1, 2)[mask.bool()]  # (real frames, n_mels)
            if real.numel() > 1:  # a std needs two values (n_mels 1 and one short clip)
                self.mean_, self.std_ = float(real.mean()), float(real.std().clamp_min(1e-3))
        return self

    def _log_mel(self, waves: list[np.ndarray]) -> tuple[Tensor, Tensor]:
        """Waveforms → (N, 1 + n_mels, frames) raw log-mel with mask row, and (N, frames) mask."""
        n = self.num_samples
        frames = n // self.hop + 1
        if self._filters is None:
            # The mel filterbank comes from librosa; the STFT runs batched in torch.
            fb = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels)
            self._filters = torch.from_numpy(fb)  # (n_mels, n_fft // 2 + 1)
        out = torch.zeros(len(waves), 1 + self.n_mels, frames)
        window = torch.hann_window(self.n_fft)
        for start in range(0, len(waves), _CHUNK):
            chunk = waves[start : start + _CHUNK]
            batch = torch.zeros(len(chunk), n)
            lengths = torch.tensor([min(len(w), n) for w in chunk])
            for i, w in enumerate(chunk):
                batch[i, : lengths[i]] = torch.from_numpy(w[:n])
            spec = torch.stft(batch, self.n_fft, self.hop, window=window, return_complex=True)
            power = spec.abs().pow(2)  # (b, n_fft // 2 + 1, frames)
            mel = torch.log(self._filters @ power + 1e-6)  # (b, n_mels, frames)
            mask = (torch.arange(frames) * self.hop < lengths.unsqueeze(1)).float()  # (b, frames)
            out[start : start + len(chunk), 0] = mask
            out[start : start + len(chunk), 1:] = mel
        return out, out[:, 0]

    def transform(self, values: pd.Series, column: str = "audio", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        waves, index, bad_rows = load_distinct(values, lambda v, row: self._load(v, column, row, on_bad_row))
        if self.features == "waveform":
            return Encoded(self._waveforms(waves), index > 0, index, bad_rows)
        frames = self.num_samples // self.hop + 1
        stored = torch.zeros(1 + len(waves), 1 + self.n_mels, frames)  # slot 0: placeholder
        if waves:
            mel, mask = self._log_mel(waves)
            mel[:, 1:] = (mel[:, 1:] - self.mean_) / self.std_ * mask.unsqueeze(1)
            stored[1:] = mel
        return Encoded(stored, index > 0, index, bad_rows)

    def _waveforms(self, waves: list[np.ndarray]) -> Tensor:
        """(1 + V, 2, samples): row 0 the real-sample mask, row 1 the clip scaled to zero
        mean and unit variance (what wav2vec 2.0's feature extractor does); slot 0 is the
        placeholder of empty cells."""
        n = self.num_samples
        stored = torch.zeros(1 + len(waves), 2, n)
        for i, wave in enumerate(waves, start=1):
            clip = torch.from_numpy(wave[:n])
            stored[i, 0, : len(clip)] = 1.0
            stored[i, 1, : len(clip)] = (clip - clip.mean()) / clip.std(correction=0).clamp_min(1e-5)
        return stored

    def to_model(self, values: Tensor, training: bool) -> Tensor:
        """(B, 1 + n_mels, T); SpecAugment masks (set to 0, the mean) when training."""
        if not training or not (self.time_mask or self.freq_mask) or self.features == "waveform":
            return values
        values = values.clone()
        spec = values[:, 1:]  # a view: (B, n_mels, T)
        b, m, t = spec.shape
        for _ in range(self.num_masks):
            # Written out: torchaudio (which has these transforms) is not installable here.
            for size, length, dim in ((self.freq_mask, m, 1), (self.time_mask, t, 2)):
                if not size:
                    continue
                width = torch.randint(0, size + 1, (b, 1))
                start = (torch.rand(b, 1) * (length - width).clamp_min(1)).long()
                pos = torch.arange(length).unsqueeze(0)
                hit = (pos >= start) & (pos < start + width)  # (B, length)
                spec.masked_fill_(hit.unsqueeze(3 - dim), 0.0)
        return values

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"n_mels": self.n_mels}

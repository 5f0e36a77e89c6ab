"""Sound-track processor: the audio stream of a video column, as an audio input.

`{name: clip, type: video, audio: true}` adds the input `clip:audio` (a dot cannot
name a PyTorch module): it reads the cells of column `clip`, decodes their sound
track with PyAV and then does exactly what AudioProcessor does (mono, soxr
resampling, log-mel). A clip without a sound track is a missing modality for this
input, not a bad cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plait.data.paths import OutsideRootError, resolve_media
from plait.data.processors.audio import MAX_RATE, AudioProcessor, TooLong
from plait.data.processors.base import Encoded, is_empty
from plait.data.processors.video import av_module

SUFFIX = ":audio"


def sound_track_key(column: str) -> str:
    return column + SUFFIX


class SoundTrackProcessor(AudioProcessor):
    """Video paths → the sound track's (1 + n_mels, frames) log-mel, as AudioProcessor."""

    kind = "sound_track"

    @property
    def modality(self) -> str:
        return "audio"

    def select(self, frame: pd.DataFrame, key: str) -> pd.Series:
        return frame[key.removesuffix(SUFFIX)]

    def source_columns(self, key: str) -> list[str]:
        return [key.removesuffix(SUFFIX)]

    def fit(self, values: pd.Series, column: str = "audio", on_bad_row: str = "error") -> SoundTrackProcessor:
        super().fit(self._with_sound(values), column, on_bad_row=on_bad_row)
        return self

    def transform(self, values: pd.Series, column: str = "audio", on_bad_row: str = "error") -> Encoded:
        return super().transform(self._with_sound(values), column, on_bad_row=on_bad_row)

    def _with_sound(self, values: pd.Series) -> pd.Series:
        """`values` with the cells of clips that have no audio stream emptied (a missing
        modality). Unreadable files are kept, for the decoder to report."""
        silent = {
            cell
            for cell in dict.fromkeys(str(v).strip() for v in values.tolist() if not is_empty(v))
            if self._no_audio_stream(cell)
        }
        if not silent:
            return values
        return values.map(lambda v: None if not is_empty(v) and str(v).strip() in silent else v)

    def _no_audio_stream(self, cell: str) -> bool:
        av = av_module()
        try:
            path = resolve_media(cell, self.base_dir)
            with av.open(str(path)) as container:  # the header only
                return not container.streams.audio
        except (OutsideRootError, OSError, ValueError, av.FFmpegError):
            return False  # reported by the decoder, as for any audio file

    def _read_mono(self, path: Path) -> tuple[np.ndarray, int]:
        """The first audio stream → (samples,) mono float32 at its own rate, holding at
        most `max_seconds` (the header's duration is checked before decoding)."""
        av = av_module()
        try:
            return self._decode_track(av, path)
        except av.FFmpegError as err:  # AudioProcessor reports ValueErrors as unreadable files
            raise ValueError(f"{type(err).__name__}: {err.strerror or err}") from None

    def _decode_track(self, av: Any, path: Path) -> tuple[np.ndarray, int]:
        with av.open(str(path)) as container:
            if not container.streams.audio:  # only when the file changed since the check
                raise ValueError("the file has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate or 0
            if not 1 <= rate <= MAX_RATE:
                raise ValueError(f"its sample rate {rate} Hz is outside 1 to {MAX_RATE} Hz")
            if (
                stream.duration
                and stream.time_base
                and float(stream.duration * stream.time_base) > (self.max_seconds)
            ):
                raise TooLong(f"{float(stream.duration * stream.time_base):,.0f}")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts: list[np.ndarray] = []
            total, limit = 0, int(self.max_seconds * rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if total > limit:  # the header understated the length
                    raise TooLong(f"more than {self.max_seconds:,.0f}")
            parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
        wave = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        return wave, rate

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"n_mels": self.n_mels}

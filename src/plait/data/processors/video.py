"""Video processor: decode with PyAV, sample K frames per clip (TSN), resize, normalise.

PyAV (FFmpeg's libraries, bundled in its wheel) reads every container and codec
FFmpeg does, offline and by content, so a wrong extension still decodes.
torchvision's video reading is deprecated and TorchCodec needs a system FFmpeg;
docs/benchmarks.md ("Video columns") says what was measured.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.paths import media_path
from plait.data.processors.base import Encoded, InputProcessor, is_empty, load_distinct
from plait.errors import DataError

_FIT_SAMPLE = 64  # clips used to estimate the per-channel mean and std
# Frames whose header declares more pixels are refused before decoding: 4K UHD
# (3840 × 2160 = 8.3 MP) and a little more; each decoded frame is held once at full
# size while it is scaled down.
MAX_PIXELS = 10_000_000
# Longer clips are refused (from the header, and again while decoding): every frame
# of a clip is decoded to reach the sampled ones, so time grows with the length.
MAX_SECONDS = 600.0
# Frames of at least this many pixels are decoded with frame threads (PyAV AUTO).
FRAME_THREADS_PIXELS = 320 * 240


class _Refused(Exception):
    """A clip refused by a guard or without usable frames (reported as a bad cell)."""


def av_module() -> Any:
    """PyAV, or a one-line error saying how to install it (plait[video])."""
    try:
        import av
    except ImportError:
        raise DataError("video columns need PyAV: pip install 'plait[video]'") from None
    return av


class VideoProcessor(InputProcessor):
    """Paths → uint8 (frames · offsets, 1 + 3, size, size) per distinct clip.

    Channel 0 of each stored frame is the real-frame mask (255 real, 0 padding: a
    clip shorter than `frames` frames fills the first segments and masks the rest);
    channels 1.. are RGB. The clip's time is cut into `frames` equal segments and each
    segment keeps `offsets` evenly spaced candidate frames (chosen by presentation
    time, so a variable frame rate samples evenly in time). `to_model` takes one
    candidate per segment: a random one when training (TSN, Wang et al. 2016), the
    middle one (the segment's centre, for odd `offsets`) at evaluation.
    """

    kind = "video"

    def __init__(
        self,
        frames: int = 8,
        offsets: int = 3,
        size: int = 64,
        keep_aspect: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        max_pixels: int = MAX_PIXELS,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        self.frames = frames  # K: frames the encoder sees per clip
        self.offsets = offsets  # candidates stored per segment (training picks one at random)
        self.size = size
        self.keep_aspect = keep_aspect  # True: scale the shorter side, centre-crop (as images)
        # Fixed normalisation (a pretrained model's); estimated from training clips if None.
        self.mean = mean
        self.std = std
        self.max_pixels = max_pixels  # larger frames are bad cells (decompression-bomb guard)
        self.max_seconds = max_seconds  # longer clips are bad cells

    @property
    def slots(self) -> int:
        """Stored frames per clip (M = frames · offsets)."""
        return self.frames * self.offsets

    def _check_params(self, column: str) -> None:
        for name, low in (("frames", 1), ("offsets", 1), ("size", 8), ("max_pixels", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise DataError(f"column {column!r}: video {name} must be an integer ≥ {low}, got {value!r}")
        if not isinstance(self.max_seconds, (int, float)) or not self.max_seconds > 0:
            raise DataError(
                f"column {column!r}: video max_seconds must be positive, got {self.max_seconds!r}"
            )

    def fit(self, values: pd.Series, column: str = "video", on_bad_row: str = "error") -> VideoProcessor:
        self._check_params(column)
        if self.mean is not None or self.std is not None:
            if not (isinstance(self.mean, list) and isinstance(self.std, list)) or not (
                len(self.mean) == len(self.std) == 3
            ):
                raise DataError(f"column {column!r}: video mean and std need 3 values each")
            self.mean_, self.std_ = [float(v) for v in self.mean], [float(v) for v in self.std]
            return self
        cells = values[[not is_empty(v) for v in values.tolist()]].drop_duplicates()
        sample = cells.sample(min(_FIT_SAMPLE, len(cells)), random_state=0) if len(cells) else cells
        clips = [c for i, v in sample.items() if (c := self._load(v, column, i, on_bad_row)) is not None]
        real = [c[c[:, 0, 0, 0] > 0, 1:] for c in clips]  # (frames, 3, S, S) each
        if real:
            pixels = torch.from_numpy(np.concatenate(real)).float().div_(255)
            self.mean_ = pixels.mean(dim=(0, 2, 3)).tolist()
            self.std_ = pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        else:
            self.mean_, self.std_ = [0.5] * 3, [0.25] * 3
        return self

    # -- decoding -------------------------------------------------------------
    def _load(self, value: Any, column: str, row: int, on_bad_row: str) -> np.ndarray | None:
        """One cell → uint8 (M, 4, size, size); None when unreadable and skipping."""
        if (path := media_path(value, self.base_dir, column, row, on_bad_row)) is None:
            return None  # outside --data-root, and bad rows are skipped or missing
        av = av_module()
        if not path.is_file():
            problem = "video file not found"
        else:
            try:
                clip = self._decode(path)
                return clip if self.perturb is None else self.perturb(clip)
            except _Refused as err:
                problem = str(err)
            except (av.FFmpegError, ValueError, OSError, EOFError, IndexError) as err:
                # FFmpeg's own words without the file name (the message ends with the path)
                detail = " ".join(str(getattr(err, "strerror", None) or err).split())[:120]
                problem = f"not a readable video file ({type(err).__name__}: {detail})"
        if on_bad_row != "error":
            return None
        raise DataError(f"column {column!r}, row {row + 1}: {problem}: {path}")

    def _decode(self, path: Path) -> np.ndarray:
        av = av_module()
        with av.open(str(path)) as container:  # header and stream list only
            if not container.streams.video:
                raise _Refused("the file has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > self.max_pixels:
                raise _Refused(self._too_large(width, height))
            declared = container.duration / 1e6 if container.duration else 0.0  # microseconds
            self._check_length(declared)
            times = self._packet_times(container, stream)
        if not times:
            raise _Refused("the video stream holds 0 frames")
        wanted = self._sample(times)  # (M,) frame numbers, or -1 for a padded slot
        # Pass 2: decode in order, converting only the sampled frames. Decoders return
        # frames in presentation order, so the n-th frame out is the n-th time above
        # (containers such as AVI label B-frames with decoding times, not display times).
        found: dict[int, np.ndarray] = {}
        needed = set(wanted) - {-1}
        last = max(needed)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # Frame threads cost more to start than a small clip takes to decode: 64×64
            # clips decoded in 58 ms each with AUTO, 19 ms with SLICE; 640×360 ones in
            # 1.9 s with AUTO, 2.7 s with SLICE (bench/video_decoders.py, 2026-12-07).
            stream.thread_type = "AUTO" if width * height >= FRAME_THREADS_PIXELS else "SLICE"
            for number, frame in enumerate(container.decode(stream)):
                if frame.width * frame.height > self.max_pixels:  # a size change mid-stream
                    raise _Refused(self._too_large(frame.width, frame.height))
                if number in needed:
                    found[number] = self._pixels(frame)
                if number >= last:
                    break
        if not found:
            raise _Refused("no frame of the video stream could be decoded")
        decoded = sorted(found)
        out = np.zeros((len(wanted), 4, self.size, self.size), dtype=np.uint8)
        for slot, number in enumerate(wanted):
            if number < 0:
                continue
            # A sampled frame that did not decode: the nearest earlier one that did.
            at = decoded[max(0, bisect.bisect_right(decoded, number) - 1)]
            out[slot, 0] = 255
            out[slot, 1:] = found[at]
        return out

    def _packet_times(self, container: Any, stream: Any) -> list[float]:
        """Pass 1: every video packet's time in seconds, sorted (presentation order),
        from the packets alone (nothing decoded); refused past `max_seconds`."""
        base = float(stream.time_base or 0)
        times = []
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.size == 0:  # the demuxer's final empty packet
                continue
            times.append(stamp * base)
            if times[-1] - times[0] > self.max_seconds:  # longer than its header said
                raise _Refused(self._too_long(times[-1] - times[0]))
        return sorted(times)

    def _too_large(self, width: int, height: int) -> str:
        return (
            f"video frames too large to decode ({width}×{height} = {width * height:,} pixels); "
            f"the limit is max_pixels={self.max_pixels:,} (a video preprocessing option)"
        )

    def _check_length(self, seconds: float) -> None:
        if seconds > self.max_seconds:
            raise _Refused(self._too_long(seconds))

    def _too_long(self, seconds: float) -> str:
        return (
            f"video too long ({seconds:,.0f} s); the limit is max_seconds={self.max_seconds:g} "
            "(a video preprocessing option)"
        )

    def _sample(self, times: list[float]) -> list[int]:
        """Sorted frame times (s) → the frame number of each stored slot (segment-major,
        `offsets` per segment), -1 for padding: the frame shown at each candidate time,
        so a variable frame rate samples evenly in time. Short clips: one frame per
        segment."""
        k, m = self.frames, self.offsets
        if len(times) <= k:
            return [i if i < len(times) else -1 for i in range(k) for _ in range(m)]
        step = (times[-1] - times[0]) / (len(times) - 1)  # mean frame duration
        span = times[-1] - times[0] + step
        picks = []
        for i in range(k):
            for j in range(m):
                t = times[0] + span * (i + (j + 0.5) / m) / k
                picks.append(max(0, bisect.bisect_right(times, t + 1e-9) - 1))  # frame shown at t
        return picks

    def _pixels(self, frame: Any) -> np.ndarray:
        """A decoded frame → uint8 (3, size, size), upright (rotation metadata applied),
        scaled by FFmpeg's swscale and centre-cropped."""
        turns = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns to display
        width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
        if self.keep_aspect:
            scale = self.size / min(width, height)
            width, height = max(self.size, round(width * scale)), max(self.size, round(height * scale))
        else:
            width = height = self.size
        stored = (height, width) if turns % 2 else (width, height)
        rgb = frame.reformat(width=stored[0], height=stored[1], format="rgb24").to_ndarray()
        rgb = np.rot90(rgb, turns)  # (height, width, 3)
        top, left = (rgb.shape[0] - self.size) // 2, (rgb.shape[1] - self.size) // 2
        return np.ascontiguousarray(rgb[top : top + self.size, left : left + self.size].transpose(2, 0, 1))

    def transform(self, values: pd.Series, column: str = "video", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        clips, index, bad_rows = load_distinct(values, lambda v, row: self._load(v, column, row, on_bad_row))
        placeholder = np.zeros((self.slots, 4, self.size, self.size), dtype=np.uint8)  # slot 0: no frame
        return Encoded(torch.from_numpy(np.stack([placeholder, *clips])), index > 0, index, bad_rows)

    # -- per batch ------------------------------------------------------------
    def select_frames(self, values: Tensor, training: bool) -> Tensor:
        """(B, frames · offsets, ...) → (B, frames, ...): one candidate per segment, at
        random when training, the middle one otherwise. Works on stored pixels and on
        per-frame features alike."""
        b = len(values)
        grouped = values.view(b, self.frames, self.offsets, *values.shape[2:])
        if training and self.offsets > 1:
            pick = torch.randint(0, self.offsets, (b, self.frames), device=values.device)
        else:
            pick = torch.full((b, self.frames), self.offsets // 2, device=values.device)
        rows = torch.arange(b, device=values.device)[:, None]
        return grouped[rows, torch.arange(self.frames, device=values.device)[None], pick]

    def normalise(self, frames: Tensor) -> Tensor:
        """uint8 (..., 3, H, W) → float, normalised per channel."""
        mean = torch.tensor(self.mean_, device=frames.device).view(3, 1, 1)
        std = torch.tensor(self.std_, device=frames.device).view(3, 1, 1)
        return (frames.float().div(255) - mean) / std

    def to_model(self, values: Tensor, training: bool) -> Tensor:
        """uint8 (B, M, 4, H, W) → float (B, frames, 4, H, W): channel 0 the real-frame
        mask (1/0), channels 1.. normalised RGB (zero on padded frames)."""
        picked = self.select_frames(values, training)
        mask = (picked[:, :, :1] > 0).float()  # (B, K, 1, H, W)
        return torch.cat([mask, self.normalise(picked[:, :, 1:]) * mask], dim=2)

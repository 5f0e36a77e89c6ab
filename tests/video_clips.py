"""Tiny video clips written with PyAV for the video tests (no data files needed)."""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pandas as pd

av = __import__("pytest").importorskip("av")

DIRECTIONS = ("left", "right", "up", "down")


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    pts_ms: list[int] | None = None,
    sound: np.ndarray | None = None,
    sample_rate: int = 8000,
    rotation: int = 0,
    codec: str = "libx264",
) -> Path:
    """RGB frames (H, W, 3) uint8 → an MP4 (or the container `path`'s suffix names);
    `pts_ms`: presentation times in milliseconds (a variable frame rate), default 10 fps;
    `sound`: mono float32 samples muxed as an AAC track."""
    height, width = frames[0].shape[:2]
    pts_ms = pts_ms if pts_ms is not None else [100 * i for i in range(len(frames))]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        track = out.add_stream("aac", rate=sample_rate) if sound is not None else None
        for image, pts in zip(frames, pts_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = pts, fractions.Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if track is not None:
            audio = av.AudioFrame.from_ndarray(
                sound.reshape(1, -1).astype(np.float32), format="fltp", layout="mono"
            )
            audio.sample_rate, audio.pts = sample_rate, 0
            out.mux(track.encode(audio))
            out.mux(track.encode())
    return path


def moving_square(
    direction: str, frames: int = 8, size: int = 32, rng: np.random.Generator | None = None
) -> list:
    """A white square crossing a black frame in `direction`; the path is the reverse of
    the opposite direction's, so the set of frames alone cannot tell the two apart."""
    rng = rng or np.random.default_rng(0)
    side = size // 4
    lane = int(rng.integers(0, size - side))
    start, end = 0, size - side
    if direction in ("left", "up"):
        start, end = end, start
    out = []
    for i in range(frames):
        pos = round(start + (end - start) * i / (frames - 1))
        image = np.zeros((size, size, 3), np.uint8)
        if direction in ("left", "right"):
            image[lane : lane + side, pos : pos + side] = 255
        else:
            image[pos : pos + side, lane : lane + side] = 255
        out.append(image)
    return out


def direction_table(folder: Path, rows: int = 24, sound_every: int = 2, seed: int = 0) -> pd.DataFrame:
    """rows clips of a moving square (label `direction`), every `sound_every`-th with a
    tone whose pitch says the direction's axis (label `axis`)."""
    rng = np.random.default_rng(seed)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(rows):
        direction = DIRECTIONS[i % 4]
        sound = None
        if i % sound_every == 0:
            pitch = 440.0 if direction in ("left", "right") else 880.0
            sound = (0.3 * np.sin(2 * np.pi * pitch * np.arange(4000) / 8000)).astype(np.float32)
        write_clip(folder / "clips" / f"{i}.mp4", moving_square(direction, rng=rng), sound=sound)
        records.append({"clip": f"clips/{i}.mp4", "direction": direction})
    return pd.DataFrame(records)

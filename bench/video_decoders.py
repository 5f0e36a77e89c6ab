"""PyAV against TorchCodec: K evenly spaced frames from each clip, as Plait's video
processor samples them (issue 21: measure both decoders and say why one was chosen).

Writes seeded H.264 clips with PyAV into --out (outside the repository): small ones like
the talking digits (64×64, 8 frames) and a few 640×360, 30 fps, 10 s ones of random
texture (the codec's worst case). Then, per decoder and kind of clip, the wall seconds
to open every clip and decode its K sampled frames to RGB arrays, best of --repeats.
Needs `av`, `torchcodec` (which needs a system FFmpeg: Debian's `ffmpeg` package) and
numpy in one environment; Plait itself is not imported.

    python bench/video_decoders.py --out /tmp/video-decoders [--small 200] [--large 4] [--frames 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, frames: int, size: tuple[int, int], fps: int, rng: np.random.Generator) -> None:
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())


def centres(total: int, k: int) -> list[int]:
    """Frame numbers at the centres of k equal segments (the processor's evaluation rule)."""
    return sorted({min(total - 1, int((i + 0.5) * total / k)) for i in range(k)})


def pyav_frames(path: Path, k: int, threads: str = "AUTO") -> int:
    """Decode in order up to the last sampled frame, keeping the sampled ones (Plait's
    second pass; `threads` is PyAV's thread_type, AUTO as Plait sets it, or SLICE)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = threads
        wanted = set(centres(stream.frames, k))
        last, kept = max(wanted), 0
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                frame.to_ndarray(format="rgb24")
                kept += 1
            if i >= last:
                break
    return kept


def torchcodec_frames(path: Path, k: int) -> int:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1)
    batch = decoder.get_frames_at(centres(decoder.metadata.num_frames, k))
    return int(batch.data.shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    kinds = {"64x64, 8 frames": [], "640x360, 30 fps, 10 s": []}
    for kind, count, frames, size, fps in (
        ("64x64, 8 frames", args.small, 8, (64, 64), 8),
        ("640x360, 30 fps, 10 s", args.large, 300, (640, 360), 30),
    ):
        for i in range(count):
            path = args.out / f"{kind.split(',')[0]}-{i}.mp4"
            if not path.exists():
                args.out.mkdir(parents=True, exist_ok=True)
                write_clip(path, frames, size, fps, rng)
            kinds[kind].append(path)
    import torchcodec

    print(f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), TorchCodec {torchcodec.__version__}")
    for kind, paths in kinds.items():
        decoders = {
            "PyAV": pyav_frames,
            "PyAV, SLICE": lambda p, k: pyav_frames(p, k, "SLICE"),
            "TorchCodec": torchcodec_frames,
        }
        for name, decode in decoders.items():
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                kept = sum(decode(p, args.frames) for p in paths)
                best = min(best, time.perf_counter() - start)
            print(
                f"{kind:22s} {name:11s} {len(paths):4d} clips  {1000 * best / len(paths):7.1f} ms/clip  "
                f"{kept / best:8.0f} sampled frames/s",
                flush=True,
            )


if __name__ == "__main__":
    main()

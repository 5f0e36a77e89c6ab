"""Talking digits: video clips whose frames show a moving digit and whose sound track says one.

Each clip (64×64, 8 frames at 8 fps, MP4 written with PyAV) shows a handwritten digit
from scikit-learn's `load_digits` crossing the frame left, right, up or down, with an
FSDD recording muxed in as its AAC sound track. Three labels, each a different test:

- `digit`: the shown digit (the frames alone are enough);
- `direction`: left, right, up or down. A direction's path is the reverse of the
  opposite one's, so a bag of frames sees the axis but never the sense: a mean-pooled
  frame model is capped at 50 % (chance 25 %); a temporal encoder can do better;
- `match`: whether the spoken digit is the shown one (half the clips): needs both the
  frames and the sound track of the same file.

A fourth head, `spoken` (the heard digit), is trained beside them as an auxiliary
task, so the sound encoder learns digits that `match` can compare.

Test clips use FSDD's test recordings (takes 0-4) and digit images never used in
training. Six models, each one network with the four labels as four heads, trained
through the CLI: frame mean (`video_cnn`, temporal mean), temporal (`video_cnn`,
temporal 1-D conv), video + sound track (`audio: true`; concat fusion, and tensor
fusion, whose outer product can compare the two digits), the sound alone (the
same recordings as WAV files), and `video_pretrained` (the `medium` preset's video
encoder). Beside them, logistic regression on the raw frame pixels
concatenated in order plus the recording's mean log-mel (the strongest simple baseline
here). Also prints decode throughput (cold and through the decode cache) and peak memory.

    .venv/bin/python -m bench.talking_digits [--clips 1200] [--epochs 30] [--out /tmp/talking] [--models a,b]

Deterministic (seed 0); everything is written under --out (default: a new temporary folder).
"""

from __future__ import annotations

import argparse
import fractions
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from bench.common import SHARED_DATA, command_line, plait_cli, run_metrics

SEED = 0
SIZE, FRAMES, FPS, DIGIT_PX = 64, 8, 8, 24
DIRECTIONS = ("left", "right", "up", "down")
LABELS = ("digit", "direction", "match", "spoken")  # spoken: an auxiliary head (the heard digit)


def digit_frames(image: np.ndarray, direction: str, rng: np.random.Generator) -> list[np.ndarray]:
    """An 8×8 digit (0-16) scaled to 24 px, crossing a black 64×64 frame in `direction`.
    Start and end are drawn alike for every direction, so a path and its reverse are
    equally likely."""
    sprite = np.kron(image * 255 / 16, np.ones((3, 3))).astype(np.uint8)  # (24, 24)
    lane = int(rng.integers(4, SIZE - DIGIT_PX - 4))
    low, high = int(rng.integers(0, 8)), SIZE - DIGIT_PX - int(rng.integers(0, 8))
    start, end = (high, low) if direction in ("left", "up") else (low, high)
    frames = []
    for t in range(FRAMES):
        pos = round(start + (end - start) * t / (FRAMES - 1))
        frame = np.zeros((SIZE, SIZE), np.uint8)
        y, x = (lane, pos) if direction in ("left", "right") else (pos, lane)
        frame[y : y + DIGIT_PX, x : x + DIGIT_PX] = sprite
        frames.append(np.repeat(frame[:, :, None], 3, axis=2))
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], wave: np.ndarray, rate: int) -> None:
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "18"})
        video.width = video.height = SIZE
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        sound = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="fltp", layout="mono")
        sound.sample_rate, sound.pts = rate, 0
        out.mux(audio.encode(sound))
        out.mux(audio.encode())


def make_table(folder: Path, clips: int, fsdd: Path = SHARED_DATA / "fsdd") -> tuple[Path, dict]:
    """Write the clips under folder/clips and the table; return its path and, for the
    baseline, each clip's raw frames and log-mel summary."""
    import librosa
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    pools = {}
    for d in range(10):  # digit images: 70 % for training clips, 30 % for test clips
        ids = rng.permutation(np.flatnonzero(digits.target == d))
        cut = int(0.7 * len(ids))
        pools[("train", d)], pools[("test", d)] = ids[:cut], ids[cut:]
    recordings = pd.read_csv(fsdd / "recordings.csv")
    n_test = clips // 4
    chosen = pd.concat(
        [
            recordings[recordings["split"] == "train"].sample(clips - n_test, random_state=SEED),
            recordings[recordings["split"] == "test"].sample(n_test, random_state=SEED),
        ]
    )
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows, pixels, sound = [], [], []
    for i, rec in enumerate(chosen.itertuples()):
        spoken = int(rec.digit)
        match = bool(rng.random() < 0.5)
        shown = spoken if match else int(rng.choice([d for d in range(10) if d != spoken]))
        image = digits.images[int(rng.choice(pools[(rec.split, shown)]))]
        direction = DIRECTIONS[int(rng.integers(4))]
        frames = digit_frames(image, direction, rng)
        wave, rate = sf.read(fsdd / rec.audio, dtype="float32")
        write_mp4(folder / "clips" / f"{i}.mp4", frames, wave, rate)
        rows.append(
            {
                "clip": f"clips/{i}.mp4",
                "voice": str((fsdd / rec.audio).resolve()),
                "digit": shown,
                "direction": direction,
                "match": "yes" if match else "no",
                "spoken": spoken,
                "split": rec.split,
            }
        )
        small = [f[::4, ::4, 0].astype(np.float32).ravel() / 255 for f in frames]  # 16×16 each, in order
        pixels.append(np.concatenate(small))
        spectrum = librosa.feature.melspectrogram(y=wave, sr=rate, n_fft=256, hop_length=80, n_mels=40)
        mel = librosa.power_to_db(spectrum)  # 32 ms windows, 10 ms hops, as the audio processor
        sound.append(np.concatenate([mel.mean(axis=1), mel.std(axis=1)]))
    table = pd.DataFrame(rows)
    path = folder / "talking_digits.csv"
    table.to_csv(path, index=False)
    return path, {"pixels": np.stack(pixels), "sound": np.stack(sound), "table": table}


def baseline(data: dict) -> dict[str, dict[str, float]]:
    """Logistic regression (standardised inputs) on the frames' pixels in order, on the
    sound summary, and on both: test accuracy per label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = data["table"]
    train, test = (table["split"] == "train").to_numpy(), (table["split"] == "test").to_numpy()
    features = {
        "frame pixels in order": data["pixels"],
        "sound (log-mel mean, std)": data["sound"],
        "both": np.hstack([data["pixels"], data["sound"]]),
    }
    scores: dict[str, dict[str, float]] = {}
    for name, x in features.items():
        scores[name] = {}
        for label in LABELS:
            y = table[label].astype(str).to_numpy()
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            model.fit(x[train], y[train])
            scores[name][label] = float((model.predict(x[test]) == y[test]).mean())
    return scores


def decode_throughput(folder: Path, table: Path) -> dict[str, float]:
    """Decode every clip with the video processor, cold and then through the decode cache."""
    from plait.data.decode_cache import cached_transform
    from plait.data.processors import VideoProcessor

    os.environ["PLAIT_CACHE_DIR"] = str(folder / "decode-cache")
    cells = pd.read_csv(table)["clip"]
    proc = VideoProcessor(frames=FRAMES, size=32, mean=[0.5] * 3, std=[0.25] * 3)
    proc.base_dir = table.parent
    proc.fit(cells, "clip")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    cold = cached_transform(proc, cells, "clip", "error")
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    cached_transform(proc, cells, "clip", "error")
    warm_s = time.perf_counter() - start
    frames = len(cells) * FRAMES  # every frame of every clip is decoded (8 of 8 sampled)
    return {
        "clips": len(cells),
        "cold_fps": frames / cold_s,
        "cached_fps": frames / warm_s,
        "stored_mb": cold.values.numel() / 1e6,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_before_mb": before / 1024,
    }


VIDEO = {"name": "clip", "type": "video", "preprocessing": {"frames": FRAMES, "size": 32}}
NAMES = {
    "frame_mean": "frame mean (video_cnn, temporal mean)",
    "temporal": "temporal (video_cnn, temporal conv)",
    "video_sound": "video + sound track (audio: true), concat fusion",
    "video_sound_tensor": "video + sound track, tensor fusion",
    "sound_only": "sound only (the recordings as WAV)",
    "pretrained": "video_pretrained (EfficientNet-Lite0 per frame at 112 px, cached; temporal conv)",
}
MODELS = {
    "frame_mean": [{**VIDEO, "encoder": {"name": "video_cnn", "temporal": "mean"}}],
    "temporal": [{**VIDEO, "encoder": {"name": "video_cnn", "temporal": "conv"}}],
    "video_sound": [
        {
            **VIDEO,
            "encoder": {"name": "video_cnn", "temporal": "conv"},
            "audio": {"sample_rate": 8000, "n_mels": 40},
        }
    ],
    "sound_only": [{"name": "voice", "type": "audio", "preprocessing": {"sample_rate": 8000, "n_mels": 40}}],
    "pretrained": [
        {
            "name": "clip",
            "type": "video",
            "encoder": {"name": "video_pretrained"},
            "preprocessing": {"frames": FRAMES},
        }
    ],
}


MODELS["video_sound_tensor"] = MODELS["video_sound"]  # the same inputs, another fusion
FUSION = {"video_sound_tensor": {"name": "tensor", "dim": 16, "out_dim": 128}}


def train(
    folder: Path, table: Path, name: str, epochs: int, seed: int = SEED
) -> tuple[dict[str, float], float, float]:
    """Test accuracy per label, wall seconds, and the training process's peak memory (MB)."""
    slug = name
    config = {
        "inputs": MODELS[name],
        "outputs": [
            {"name": "digit", "type": "category"},
            {"name": "direction", "type": "category"},
            {"name": "match", "type": "binary"},
            {"name": "spoken", "type": "category"},
        ],
        "fusion": FUSION.get(name, {"name": "concat"}),
        "preset": "fast",
        "seed": seed,
        "trainer": {"epochs": epochs, "patience": 6, "batch_size": 32, "progress": False},
    }
    path = folder / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ("train", table, "--config", path, "--out", folder / slug)
    print(f"  {command_line(*args)}", flush=True)
    _, seconds = plait_cli(*args)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far
    test = run_metrics(folder / slug)["test"]
    return {label: float(test[f"{label}/accuracy"]) for label in LABELS}, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=SEED, help="the networks' seed (the clips keep seed 0)")
    parser.add_argument("--out", type=Path, default=None, help="folder for clips and runs (outside the repo)")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated subset of {', '.join(MODELS)} (none: baselines only)",
    )
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="talking-digits-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PLAIT_CACHE_DIR"] = str(folder / "cache")
    start = time.perf_counter()
    table, data = make_table(folder, args.clips)
    frame = data["table"]
    print(
        f"table: {table} ({len(frame)} clips, {(frame['split'] == 'test').sum()} test; "
        f"written in {time.perf_counter() - start:.0f} s)"
    )
    decode = decode_throughput(folder, table)
    print(
        f"decode ({decode['clips']} clips × {FRAMES} frames, 32 px): cold {decode['cold_fps']:.0f} frames/s, "
        f"decode cache {decode['cached_fps']:.0f} frames/s; stored {decode['stored_mb']:.1f} MB; "
        f"peak RSS {decode['peak_mb']:.0f} MB (before decoding {decode['peak_before_mb']:.0f} MB)"
    )
    scores = baseline(data)
    print("\n| model | digit | direction | match | spoken (aux) | train s | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for name, found in scores.items():
        print(f"| logistic regression: {name} | " + " | ".join(f"{found[k]:.3f}" for k in LABELS) + " | | |")
    for name in filter(None, args.models.split(",")):
        found, seconds, peak = train(folder, table, name, args.epochs, args.seed)
        print(
            f"| {NAMES[name]} | "
            + " | ".join(f"{found[k]:.3f}" for k in LABELS)
            + f" | {seconds:.0f} | {peak:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Digit scenes for detection and grounding: 2-5 digits of scikit-learn's load_digits
(8×8, upscaled) placed at random, without overlap, on a square canvas.

`write_scenes` writes the PNGs and two tables (CSV, paths relative to the folder):
- detect.csv: image, boxes (JSON [[x0, y0, x1, y1, digit], ...]);
- ground.csv: image, phrase ("the 7" or "the 2nd from the left"), box (JSON
  [x0, y0, x1, y1]), n (digits in the scene); one row per scene, with a phrase for a
  digit chosen at random (a digit value only when it is unique in the scene); scenes
  without digits (counts from 0) have no grounding row.
Seeded; used by bench/detection.py and the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    return (data.images / 16.0 * 255).astype(np.uint8), data.target


def scene(
    rng: np.random.Generator,
    images: np.ndarray,
    labels: np.ndarray,
    canvas: int,
    sizes: tuple[int, int],
    count: int,
) -> tuple[np.ndarray, list[list[int]]]:
    """One canvas (H, W) uint8 and its objects [x0, y0, x1, y1, digit], left to right."""
    out = np.zeros((canvas, canvas), dtype=np.uint8)
    objects: list[list[int]] = []
    while len(objects) < count:
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        x0, y0 = (int(v) for v in rng.integers(0, canvas - size + 1, 2))
        box = [x0, y0, x0 + size, y0 + size]
        if any(not (box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1]) for o in objects):
            continue  # overlaps a digit already placed
        pick = int(rng.integers(len(images)))
        digit = Image.fromarray(images[pick]).resize((size, size), Image.Resampling.BILINEAR)
        out[y0 : y0 + size, x0 : x0 + size] = np.asarray(digit)
        objects.append([*box, int(labels[pick])])
    objects.sort(key=lambda o: (o[0] + o[2], o[1]))
    return out, objects


def write_scenes(
    folder: Path,
    n: int,
    seed: int = 0,
    canvas: int = 128,
    sizes: tuple[int, int] = (16, 24),
    counts: tuple[int, int] = (2, 5),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` scenes under folder/scenes; returns (detect, ground) tables, also written as CSVs."""
    rng = np.random.default_rng(seed)
    images, labels = _digits()
    (folder / "scenes").mkdir(parents=True, exist_ok=True)
    detect, ground = [], []
    for i in range(n):
        pixels, objects = scene(
            rng, images, labels, canvas, sizes, int(rng.integers(counts[0], counts[1] + 1))
        )
        path = f"scenes/{i:05d}.png"
        Image.fromarray(pixels).convert("RGB").save(folder / path)
        detect.append({"image": path, "boxes": json.dumps(objects)})
        if not objects:  # nothing to point at: a detection row only
            continue
        k = int(rng.integers(len(objects)))
        digit = objects[k][4]
        unique = sum(o[4] == digit for o in objects) == 1
        phrase = f"the {digit}" if unique and rng.random() < 0.5 else f"the {ORDINALS[k + 1]} from the left"
        ground.append({"image": path, "phrase": phrase, "box": json.dumps(objects[k][:4]), "n": len(objects)})
    detect_frame, ground_frame = pd.DataFrame(detect), pd.DataFrame(ground)
    detect_frame.to_csv(folder / "detect.csv", index=False)
    ground_frame.to_csv(folder / "ground.csv", index=False)
    return detect_frame, ground_frame

"""Detection and grounding on digit scenes (bench/scenes.py): figures for docs/benchmarks.md.

    .venv/bin/python -m bench.detection --out /tmp/plait-detection [--scenes 800]

Writes the scenes and runs outside the repository (--out). Trains, each on the same
split (the last 20% of scenes held out as test):
- detection with the scratch CNN, and with the pretrained EfficientNet-Lite0 (frozen,
  its feature maps through the pyramid), reporting mAP, mAP@.5 and time per epoch;
  beside them a classical baseline with no network: connected components of the
  canvas (the digits never touch), mapped to the digit's box by a linear fit on the
  training scenes and classified by logistic regression on 8×8 crops;
- grounding with the phrase (FiLM and cross-attention) and without it (the image
  alone), reporting accuracy at IoU ≥ 0.5 and mean IoU; beside them the exact box
  of a random digit of the scene (expected accuracy 1 / digits).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.ops import box_iou

import plait
from bench.scenes import write_scenes
from plait.evaluation.boxes import BoxesMAP, BoxIoU

SIZE = 128
CNN = {"name": "cnn", "channels": [16, 32, 64, 64, 64], "stem_stride": 2}
LITE0 = {"name": "efficientnet_lite0", "cache": False, "dropout": 0.0}


def trainer(epochs: int) -> dict:
    return {
        "epochs": epochs,
        "batch_size": 16,
        "progress": False,
        "learning_rate": 5e-3,
        "val_fraction": 0.15,
    }


def timed_fit(
    table: pd.DataFrame, folder: Path, label: str, config: dict, out: Path
) -> tuple[plait.Predictor, float]:
    start = time.perf_counter()
    predictor = plait.fit(
        table, label=label, config=config, out=out, base_dir=folder, overwrite=True, verbose=False
    )
    seconds = time.perf_counter() - start
    print(f"{out.name}: {seconds:.0f} s in all", flush=True)
    return predictor, float(np.median(json.loads((out / "metrics.json").read_text())["epoch_seconds"]))


def detection(folder: Path, train: pd.DataFrame, test: pd.DataFrame, epochs: int) -> list[dict]:
    rows = []
    for name, encoder, levels in (("scratch cnn", CNN, 3), ("efficientnet_lite0 (frozen)", LITE0, 3)):
        config = {
            "inputs": [
                {"name": "image", "type": "image", "encoder": encoder, "preprocessing": {"size": SIZE}}
            ],
            "outputs": [{"name": "boxes", "type": "boxes", "head": {"name": "detection", "levels": levels}}],
            "trainer": trainer(epochs),
        }
        predictor, per_epoch = timed_fit(train, folder, "boxes", config, folder / f"run-detect-{len(rows)}")
        metrics = predictor.evaluate(test, base_dir=folder)
        rows.append({"model": name, **metrics, "s_per_epoch": per_epoch})
        print(rows[-1], flush=True)
    rows.append(
        {"model": "connected components + logistic regression", **component_baseline(folder, train, test)}
    )
    print(rows[-1], flush=True)
    return rows


def _components(pixels: np.ndarray) -> list[list[int]]:
    from scipy import ndimage

    mask = ndimage.binary_dilation(pixels > 30, iterations=2)  # strokes of one digit join up
    labelled, _ = ndimage.label(mask)
    boxes = []
    for ys, xs in ndimage.find_objects(labelled):
        boxes.append([xs.start, ys.start, xs.stop, ys.stop])
    return boxes


def _crop(pixels: np.ndarray, box: list[float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return np.asarray(Image.fromarray(pixels[y0:y1, x0:x1]).resize((8, 8)), dtype=np.float32).ravel() / 255


def component_baseline(folder: Path, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Connected components (ink extents) → the pasted digit's box by a linear map fitted
    on the training scenes (a component's box is tighter than the digit's square), then
    a logistic regression on the 8×8 crop."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    grey = {p: np.asarray(Image.open(folder / p).convert("L")) for p in pd.concat([train, test])["image"]}
    crops, labels, found_boxes, true_boxes = [], [], [], []
    for path, boxes in zip(train["image"], train["boxes"], strict=True):
        components = _components(grey[path])
        for *box, digit in json.loads(boxes):
            crops.append(_crop(grey[path], box))
            labels.append(digit)
            inside = [
                c
                for c in components
                if box[0] <= (c[0] + c[2]) / 2 <= box[2] and box[1] <= (c[1] + c[3]) / 2 <= box[3]
            ]
            if len(inside) == 1:
                found_boxes.append(inside[0])
                true_boxes.append(box)
    calibrate = LinearRegression().fit(np.array(found_boxes), np.array(true_boxes))
    classes = sorted(set(labels))
    model = LogisticRegression(max_iter=2000).fit(np.stack(crops), labels)
    metric = BoxesMAP()
    for path, boxes in zip(test["image"], test["boxes"], strict=True):
        found = np.clip(calibrate.predict(np.array(_components(grey[path]), dtype=float)), 0, SIZE)
        found = [b for b in found if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        probs = model.predict_proba(np.stack([_crop(grey[path], b) for b in found]))
        preds = [
            [*(np.array(b) / SIZE), classes.index(model.classes_[k]), probs[i, k]]
            for i, b in enumerate(found)
            for k in [int(probs[i].argmax())]
        ]
        truth = [[*(np.array(b[:4]) / SIZE), classes.index(b[4])] for b in json.loads(boxes)]
        metric.update(torch.tensor([preds], dtype=torch.float32), torch.tensor([truth], dtype=torch.float32))
    return {k: float(v) for k, v in metric.compute().items()}


def grounding(
    folder: Path, train: pd.DataFrame, test: pd.DataFrame, epochs: int, conditionings: list[str]
) -> list[dict]:
    rows = []
    image = {"name": "image", "type": "image", "encoder": CNN, "preprocessing": {"size": SIZE}}
    phrase = {"name": "phrase", "type": "text", "encoder": {"name": "gru"}}
    runs = (
        ("phrase, FiLM", [image, phrase], "film"),
        ("phrase, cross-attention", [image, phrase], "cross_attention"),
        ("no phrase (image alone)", [image], "film"),
    )
    for name, inputs, conditioning in runs:
        if len(inputs) > 1 and conditioning not in conditionings:
            continue
        config = {
            "inputs": inputs,
            "outputs": [
                {
                    "name": "box",
                    "type": "box",
                    "head": {"name": "grounding", "conditioning": conditioning, "levels": 3},
                }
            ],
            "trainer": trainer(epochs),
        }
        predictor, per_epoch = timed_fit(train, folder, "box", config, folder / f"run-ground-{len(rows)}")
        metrics = predictor.evaluate(test, base_dir=folder)
        row = {"model": name, **metrics, "s_per_epoch": per_epoch}
        row.update(by_phrase(predictor, folder, test))
        if len(inputs) > 1:  # the same model, its phrase left out of every test row
            row["phrase_removed_iou_accuracy"] = predictor.evaluate(test.assign(phrase=""), base_dir=folder)[
                "iou_accuracy"
            ]
        rows.append(row)
        print(rows[-1], flush=True)
    rows.append({"model": "a random digit of the scene", **random_digit_baseline(folder, test)})
    print(rows[-1], flush=True)
    return rows


def by_phrase(predictor: plait.Predictor, folder: Path, test: pd.DataFrame) -> dict:
    """iou_accuracy per kind of phrase: "the N" (a digit value) and "the K-th from the left"."""
    found = predictor.predict(test, base_dir=folder)["box"].map(json.loads)
    iou = box_iou_rows(torch.tensor(found.tolist()), torch.tensor(test["box"].map(json.loads).tolist()))
    ordinal = test["phrase"].str.contains("from the left").to_numpy()
    hits = (iou >= 0.5).numpy()
    return {"acc_the_digit": float(hits[~ordinal].mean()), "acc_the_kth": float(hits[ordinal].mean())}


def box_iou_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return box_iou(a.float(), b.float()).diagonal()


def random_digit_baseline(folder: Path, test: pd.DataFrame, seed: int = 0) -> dict:
    """The exact box of a digit of the scene picked at random (a perfect detector with
    no phrase to go by): what a model without the phrase can reach at best on average."""
    rng = np.random.default_rng(seed)
    objects = pd.read_csv(folder / "detect.csv").set_index("image")["boxes"].map(json.loads)
    metric = BoxIoU()
    for path, box in zip(test["image"], test["box"], strict=True):
        digits = objects[path]
        pick = torch.tensor(digits[int(rng.integers(len(digits)))][:4], dtype=torch.float32) / SIZE
        metric.update(torch.cat([pick, torch.ones(1)])[None], torch.tensor([json.loads(box)]).float() / SIZE)
    values = {k: float(v) for k, v in metric.compute().items()}
    values["expected_1_over_digits"] = float((1 / test["n"]).mean())
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a folder outside the repository")
    parser.add_argument("--scenes", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=12, help="detection trainings")
    parser.add_argument("--grounding-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--conditionings", default="film,cross_attention", help="grounding with the phrase")
    parser.add_argument("--only", choices=("detection", "grounding"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    detect, ground = write_scenes(args.out, args.scenes, seed=args.seed, canvas=SIZE)
    cut = int(len(detect) * 0.8)
    results = {}
    if args.only != "grounding":
        results["detection"] = detection(args.out, detect[:cut], detect[cut:], args.epochs)
    if args.only != "detection":
        results["grounding"] = grounding(
            args.out, ground[:cut], ground[cut:], args.grounding_epochs, args.conditionings.split(",")
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    for task, rows in results.items():
        print(f"\n{task}\n{pd.DataFrame(rows).round(3).to_markdown(index=False)}")


if __name__ == "__main__":
    main()

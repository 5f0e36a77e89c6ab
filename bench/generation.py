"""Text generation (issue 6), through the real CLI.

    .venv/bin/python -m bench.generation [--part fsdd|captions|spoken|all]

- fsdd: speech → the digit's English word on the Free Spoken Digit recordings
  (official test takes); exact match and WER;
- captions: Flickr8k-1k image captioning (817 train / 183 test images, 5 references
  each) with a frozen EfficientNet-Lite0 and the decoder head; BLEU-4 and chrF on the
  test images against two baselines computed here on the same references: the
  nearest-neighbour caption (the first caption of the training image whose
  EfficientNet features are closest by cosine) and a constant caption (the training
  caption whose words are the most frequent on average, among 6–12-word captions);
- spoken: the machine-spoken MP3 of each image's first caption → that caption; WER.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import torch
import yaml

from bench.common import SHARED_DATA, plait_cli, run_metrics
from plait.evaluation.generation import references, text_metrics

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FLICKR = SHARED_DATA / "flickr8k-1k"


def train(folder: Path, name: str, table: Path, config: dict) -> tuple[dict, float, Path]:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = folder / name
    _, seconds = plait_cli("train", table, "--config", path, "--out", run, "--overwrite")
    return run_metrics(run), seconds, run


def decoder(**params: object) -> dict:
    return {"name": "decoder", "dim": 128, "depth": 2, "heads": 4, **params}


def fsdd(folder: Path) -> None:
    rec = pd.read_csv(SHARED_DATA / "fsdd" / "recordings.csv")
    table = pd.DataFrame(
        {
            "audio": [str((SHARED_DATA / "fsdd" / p).resolve()) for p in rec["audio"]],
            "word": [WORDS[d] for d in rec["digit"]],
            "split": rec["split"],
        }
    )
    path = folder / "fsdd_words.csv"
    table.to_csv(path, index=False)
    config = {
        "inputs": [{"name": "audio", "type": "audio", "preprocessing": {"sample_rate": 8000, "n_mels": 40}}],
        "outputs": [{"name": "word", "type": "text", "head": decoder(dim=64)}],
        "trainer": {"epochs": 15, "patience": 5},
    }
    metrics, seconds, _ = train(folder, "fsdd", path, config)
    test = metrics["test"]
    print(
        f"FSDD speech → word: test exact match {test['exact_match']:.3f}  WER {test['wer']:.3f}  "
        f"({metrics['rows']['test']} test takes, wall {seconds:.0f} s)"
    )


def flickr_table(folder: Path) -> Path:
    frame = pd.read_csv(FLICKR / "captions.csv")
    frame["image"] = [str((FLICKR / p).resolve()) for p in frame["image"]]
    path = folder / "captions.csv"
    frame[["image", "caption", "split"]].to_csv(path, index=False)
    return path


def baselines(table: Path, folder: Path) -> None:
    """Nearest-neighbour and constant captions, scored like the model."""
    from plait.data.processors import FeatureProcessor, TextTarget

    frame = pd.read_csv(table)
    target = TextTarget().fit(frame.loc[frame["split"] == "train", "caption"])
    frame["norm"] = target.normalise(frame["caption"])
    images = frame.drop_duplicates("image")
    proc = FeatureProcessor(
        base={"kind": "image", "params": {"size": 224, "mean": [0.5] * 3, "std": [0.5] * 3}},
        backbone={"name": "efficientnet_lite0", "path": None, "model": None},
    ).fit(images["image"].head(1))
    encoded = proc.transform(images["image"])
    features = torch.nn.functional.normalize(encoded.values[encoded.index], dim=1)  # (images, 1280)
    is_train = torch.tensor((images["split"] == "train").to_numpy())
    first = frame.groupby("image")["norm"].first()
    sims = features[~is_train] @ features[is_train].T
    nearest = images["image"][is_train.numpy()].to_numpy()[sims.argmax(1).numpy()]
    caption_of = dict(zip(images["image"][~is_train.numpy()], (first[i] for i in nearest), strict=True))
    test = frame[frame["split"] == "test"]
    refs = references(list(test["norm"]), list(test["image"]))
    nn_scores = text_metrics([caption_of[i] for i in test["image"]], refs)
    counts = Counter(w for c in frame.loc[frame["split"] == "train", "norm"] for w in c.split())
    pool = [c for c in frame.loc[frame["split"] == "train", "norm"] if 6 <= len(c.split()) <= 12]
    constant = max(pool, key=lambda c: sum(counts[w] for w in c.split()) / len(c.split()))
    constant_scores = text_metrics([constant] * len(test), refs)
    for name, s in (("nearest neighbour", nn_scores), (f"constant {constant!r}", constant_scores)):
        print(f"captions baseline {name}: BLEU {s['bleu']:.2f}  chrF {s['chrf']:.2f}  WER {s['wer']:.3f}")


def captions(folder: Path) -> None:
    table = flickr_table(folder)
    baselines(table, folder)
    config = {
        "inputs": [
            {"name": "image", "type": "image", "encoder": {"name": "efficientnet_lite0", "out_dim": 256}}
        ],
        "outputs": [
            {"name": "caption", "type": "text", "head": decoder(dim=256, decoding="beam", beam_width=3)}
        ],
        "trainer": {"epochs": 12, "patience": 3, "learning_rate": 0.001},
    }
    metrics, seconds, run = train(folder, "captions", table, config)
    test = metrics["test"]
    scores = f"BLEU {test['bleu']:.2f}  chrF {test['chrf']:.2f}  WER {test['wer']:.3f}"
    print(f"captions Plait: {scores}  wall {seconds:.0f} s")
    frame = pd.read_csv(table)
    sample = frame[frame["split"] == "test"].drop_duplicates("image").head(3)
    sample.to_csv(folder / "sample.csv", index=False)
    out = folder / "sample_pred.csv"
    plait_cli("predict", run, folder / "sample.csv", "--output", out)
    for row, pred in zip(sample.itertuples(), pd.read_csv(out)["caption"], strict=True):
        print(f"  {Path(row.image).name}: {pred!r}  (reference: {row.caption!r})")


def first_captions(media: str, name: str) -> pd.DataFrame:
    """One row per Flickr image: `name` (the absolute path in its `media` column), its
    first caption and the official split."""
    frame = pd.read_csv(FLICKR / "captions.csv")
    frame = frame[frame["caption_index"] == 0]
    return pd.DataFrame(
        {
            name: [str((FLICKR / p).resolve()) for p in frame[media]],
            "caption": frame["caption"],
            "split": frame["split"],
        }
    )


def spoken(folder: Path) -> None:
    table = first_captions("spoken_first_caption", "speech")
    path = folder / "spoken.csv"
    table.to_csv(path, index=False)
    config = {
        "inputs": [
            {"name": "speech", "type": "audio", "encoder": "audio_gru", "preprocessing": {"n_mels": 64}}
        ],
        "outputs": [{"name": "caption", "type": "text", "head": decoder()}],
        "trainer": {"epochs": 30, "patience": 5},
    }
    metrics, seconds, _ = train(folder, "spoken", path, config)
    test = metrics["test"]
    print(f"spoken caption → text: test WER {test['wer']:.3f}  BLEU {test['bleu']:.2f}  wall {seconds:.0f} s")
    print(json.dumps(test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["fsdd", "captions", "spoken", "all"], default="all")
    args = parser.parse_args()
    for part in ["fsdd", "captions", "spoken"] if args.part == "all" else [args.part]:
        folder = Path(tempfile.mkdtemp(prefix=f"plait-gen-{part}-"))
        {"fsdd": fsdd, "captions": captions, "spoken": spoken}[part](folder)
    print("command: plait train TABLE --config <model>.yaml  (outputs: a text target, head: decoder)")


if __name__ == "__main__":
    main()

"""Audio-visual digits: FSDD recordings paired with scikit-learn's handwritten digits.

Each recording gets a handwritten image of the same digit (fixed seed). The digit
images are split in two pools, so test recordings (FSDD takes 0-4) are paired with
images never seen in training. Trains audio only, image only and fused through the
CLI and prints test accuracy, epochs and wall time for each.

    .venv/bin/python -m bench.av_digits [--epochs 10]

With `--audio-encoders audio_cnn,audio_cnn1d --seeds 2` it compares audio encoders
instead: audio only and fused, each encoder and seed, in the same run; printing test
accuracy (mean ± sd over seeds) and the median training seconds per epoch.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from bench.common import SHARED_DATA, command_line, plait_cli, run_metrics

SEED = 0


def make_table(folder: Path, fsdd: Path = SHARED_DATA / "fsdd") -> Path:
    """Write digit images under folder/digits and the paired table; return its path."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    (folder / "digits").mkdir(parents=True, exist_ok=True)
    pools: dict[tuple[str, int], list[int]] = {}
    for d in range(10):
        ids = rng.permutation(np.flatnonzero(digits.target == d))
        cut = int(0.7 * len(ids))
        pools[("train", d)], pools[("test", d)] = list(ids[:cut]), list(ids[cut:])
    for i, pixels in enumerate(digits.images):  # 8×8, values 0-16
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(folder / "digits" / f"{i}.png")
    rec = pd.read_csv(fsdd / "recordings.csv")
    images = [
        folder / "digits" / f"{rng.choice(pools[(split, digit)])}.png"
        for split, digit in zip(rec["split"], rec["digit"], strict=True)
    ]
    table = pd.DataFrame(
        {
            "audio": [str((fsdd / p).resolve()) for p in rec["audio"]],
            "image": [str(p) for p in images],
            "digit": rec["digit"],
            "split": rec["split"],
        }
    )
    path = folder / "av_digits.csv"
    table.to_csv(path, index=False)
    return path


CONFIGS = {
    "audio only": [{"name": "audio", "type": "audio", "preprocessing": {"sample_rate": 8000, "n_mels": 40}}],
    "image only": [{"name": "image", "type": "image", "preprocessing": {"size": 32, "grayscale": True}}],
}
CONFIGS["fused"] = CONFIGS["audio only"] + CONFIGS["image only"]


def write_config(folder: Path, name: str, epochs: int) -> Path:
    config = {
        "inputs": CONFIGS[name],
        "outputs": [{"name": "digit", "type": "category"}],
        "trainer": {"epochs": epochs, "patience": 5},
    }
    path = folder / f"{name.replace(' ', '_')}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def compare_audio_encoders(folder: Path, table: Path, encoders: list[str], epochs: int, seeds: int) -> None:
    """Audio only and fused with each audio encoder, `seeds` seeds each, back to back."""
    print("| model | audio encoder | test accuracy (mean ± sd) | s / epoch (median) | seeds |")
    print("|---|---|---|---|---|")
    for name in ("audio only", "fused"):
        for encoder in encoders:
            accuracy, per_epoch = [], []
            for seed in range(seeds):
                inputs = [
                    {**i, "encoder": {"name": encoder}} if i["type"] == "audio" else i for i in CONFIGS[name]
                ]
                slug = f"{name.replace(' ', '_')}-{encoder}-{seed}"
                config = {
                    "inputs": inputs,
                    "outputs": [{"name": "digit", "type": "category"}],
                    "trainer": {"epochs": epochs, "patience": epochs + 1, "progress": False},
                    "seed": seed,
                }
                path, run = folder / f"{slug}.yaml", folder / slug
                path.write_text(yaml.safe_dump(config))
                plait_cli("train", table, "--label", "digit", "--config", path, "--out", run)
                m = run_metrics(run)
                accuracy.append(m["test"]["accuracy"])
                per_epoch.append(float(np.median(m["epoch_seconds"])))
            print(
                f"| {name} | `{encoder}` | {np.mean(accuracy):.4f} ± {np.std(accuracy):.4f} "
                f"| {np.median(per_epoch):.2f} | {seeds} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--audio-encoders", default="", help="compare these audio encoders (comma-separated)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per model with --audio-encoders")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    table = make_table(folder)
    print(f"table: {table} ({len(pd.read_csv(table))} rows)")
    if args.audio_encoders:
        compare_audio_encoders(folder, table, args.audio_encoders.split(","), args.epochs, args.seeds)
        return
    for name in CONFIGS:
        run = folder / name.replace(" ", "_")
        cli = (
            "train",
            table,
            "--label",
            "digit",
            "--config",
            write_config(folder, name, args.epochs),
            "--out",
            run,
        )
        _, seconds = plait_cli(*cli)
        m = run_metrics(run)
        print(
            f"{name:11s} test accuracy {m['test']['accuracy']:.4f}  macro_f1 {m['test']['macro_f1']:.4f}"
            f"  epochs {m['epochs']} (best {m['best_epoch']})  wall {seconds:.0f} s"
        )
    print(
        "command per model:",
        command_line("train", "av_digits.csv", "--label", "digit", "--config", "<model>.yaml"),
    )


if __name__ == "__main__":
    main()

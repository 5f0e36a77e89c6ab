"""Plait vs Ludwig (issue 10): epoch time and test accuracy, same data, epochs and cores.

For each data set the same train / val / test rows go to `plait train` (this repo's
CLI) and to Ludwig (its Python API, run by a separate virtualenv's interpreter on this
same file with --worker), one after the other, both with 2 torch threads. Ludwig is
never a dependency of the repo: install it apart, e.g.

    python3 -m venv /work/ludwig-venv
    /work/ludwig-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 ludwig

    .venv/bin/python -m bench.ludwig_compare [--data easy-vqa,av-digits] [--vqa-epochs 3]
        [--av-epochs 10] [--rounds 1] [--ludwig-python /work/ludwig-venv/bin/python]
        [--plait-src SNAPSHOT/src] [--out FOLDER] [--limit N]

--plait-src runs Plait from another source tree (e.g. `git archive HEAD src bench | tar
-x -C SNAPSHOT`), so edits in progress in the working tree do not leak into a measurement.

Epoch seconds are training-loop wall time with validation taken out, for both tools
(Plait: metrics.json `epoch_seconds`; Ludwig: on_epoch_start → on_epoch_end minus
on_eval_start → on_eval_end, from a callback). --limit N keeps N training rows (smoke tests).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
BATCH, LR, WEIGHT_DECAY, WARMUP = 64, 2e-3, 1e-4, 0.15  # Plait's trainer defaults (OneCycle pct_start 0.15)
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # Ludwig's fixed split


# ---------------------------------------------------------------- tables (Plait's venv)
def write_tables(name: str, folder: Path, limit: int | None) -> tuple[Path, Path, str, int]:
    """Same rows twice: plait.csv (split train/val/test) and ludwig.csv (split 0/1/2).
    Validation = 10 % of the training rows (seed 0), fixed here so both tools see it."""
    import numpy as np
    import pandas as pd

    if name == "easy-vqa":
        from plait.data.builtin import easy_vqa

        frame, label = easy_vqa(), "answer"
    else:
        from bench.av_digits import make_table

        frame, label = pd.read_csv(make_table(folder)), "digit"
    rng = np.random.default_rng(0)
    train_ids = np.flatnonzero(frame["split"].to_numpy() == "train")
    val_ids = rng.choice(train_ids, size=round(0.1 * len(train_ids)), replace=False)
    frame.loc[val_ids, "split"] = "val"
    if limit:  # smoke test: N training rows, N // 4 validation and test rows
        keep = {"train": limit, "val": max(8, limit // 4), "test": max(8, limit // 4)}
        frame = pd.concat([frame[frame["split"] == s].head(n) for s, n in keep.items()])
    plait_csv, ludwig_csv = folder / f"{name}-plait.csv", folder / f"{name}-ludwig.csv"
    frame.to_csv(plait_csv, index=False)
    frame.assign(split=frame["split"].map(SPLIT_CODES)).to_csv(ludwig_csv, index=False)
    return plait_csv, ludwig_csv, label, int((frame["split"] == "train").sum())


# Plait's variants per data set: (name, encoder per input type, precision). The first
# is Plait's default model. Its audio encoder, `audio_cnn1d`, is of Ludwig's kind and
# size (1-D over time, 16-32-64, width 3); `audio_cnn` (2-D over the log-mel image) was
# the default until 2026-11-29. `stem_stride: 2` makes the image CNN's first
# stage downsample by its convolution's stride rather than a max-pool. bf16-mixed
# (measured once: no faster at these sizes) is left out; Ludwig's mixed precision is
# CUDA-only.
Variant = tuple[str, dict[str, dict[str, Any]], str]
STEM = {"name": "cnn", "channels": [8, 16, 32], "stem_stride": 2}
VARIANTS: dict[str, list[Variant]] = {
    "easy-vqa": [("default", {}, "32-true"), ("cnn stem_stride 2", {"image": STEM}, "32-true")],
    "av-digits": [
        ("default (audio_cnn1d)", {}, "32-true"),
        ("audio_cnn (2-D)", {"audio": {"name": "audio_cnn"}}, "32-true"),
        ("default + cnn stem_stride 2", {"image": STEM}, "32-true"),
    ],
}


def plait_config(
    name: str, epochs: int, encoders: dict[str, dict[str, Any]] | None = None, precision: str = "32-true"
) -> dict[str, Any]:
    """Reference model for easy-VQA (the demo's); bench/av_digits.py's fused model for AV
    digits; `encoders` replaces the encoder of the inputs of those types."""
    if name == "easy-vqa":
        from plait.data.builtin import DEMO_CONFIG

        inputs, label = DEMO_CONFIG["inputs"], "answer"
    else:
        from bench.av_digits import CONFIGS

        inputs, label = CONFIGS["fused"], "digit"
    encoders = encoders or {}
    inputs = [{**i, "encoder": encoders[i["type"]]} if i["type"] in encoders else i for i in inputs]
    trainer = {
        "epochs": epochs,
        "batch_size": BATCH,
        "learning_rate": LR,
        "patience": epochs + 1,
        "precision": precision,
    }
    return {
        "inputs": inputs,
        "outputs": [{"name": label, "type": "category"}],
        "fusion": "concat",
        "trainer": trainer,
    }


def ludwig_image(size: int, channels: int) -> dict[str, Any]:
    """Ludwig's stacked_cnn (8-16-32, 3×3 same, batch norm, max-pool 2, FC 64), as Plait's cnn."""
    return {
        "name": "image",
        "type": "image",
        "preprocessing": {"height": size, "width": size, "num_channels": channels},
        "encoder": {
            "type": "stacked_cnn",
            "conv_layers": [{"out_channels": c} for c in (8, 16, 32)],
            "kernel_size": 3,
            "padding": "same",
            "pool_kernel_size": 2,
            "conv_norm": "batch",
            "fc_layers": [{"output_size": 64}],
        },
    }


def ludwig_config(name: str, label: str, epochs: int, n_train: int) -> dict[str, Any]:
    """Ludwig's closest from-scratch equivalents; concat combiner + one 128-unit layer
    (Plait's MLP head); AdamW, linear warm-up 15 % then cosine (≈ Plait's OneCycle)."""
    if name == "easy-vqa":
        image = ludwig_image(size=64, channels=3)
        text = {
            "name": "question",
            "type": "text",
            "encoder": {
                "type": "rnn",
                "cell_type": "gru",
                "bidirectional": True,
                "state_size": 64,
                "embedding_size": 64,
                "num_layers": 1,
            },
        }
        inputs = [image, text]
    else:
        audio = {
            "name": "audio",
            "type": "audio",
            # 40 filter banks, 25 ms window, 10 ms hop, as Plait's 40-band log-mel.
            "preprocessing": {
                "type": "fbank",
                "num_filter_bands": 40,
                "window_length_in_s": 0.025,
                "window_shift_in_s": 0.01,
                "audio_file_length_limit_in_s": 2.5,
                "norm": "per_file",
            },
            # Ludwig's audio encoders are 1-D over time (filter banks are the channels).
            "encoder": {
                "type": "stacked_cnn",
                "conv_layers": [{"num_filters": c} for c in (16, 32, 64)],
                "filter_size": 3,
                "pool_size": 2,
                "norm": "batch",
                "reduce_output": "mean",
                "fc_layers": [{"output_size": 128}],
            },
        }
        inputs = [audio, ludwig_image(size=32, channels=1)]
    total_steps = epochs * math.ceil(n_train / BATCH)
    return {
        "model_type": "ecd",
        "input_features": inputs,
        "output_features": [{"name": label, "type": "category"}],
        "combiner": {"type": "concat", "fc_layers": [{"output_size": 128}], "dropout": 0.1},
        "preprocessing": {"split": {"type": "fixed", "column": "split"}},
        "trainer": {
            "epochs": epochs,
            "batch_size": BATCH,
            "eval_batch_size": 512,
            "learning_rate": LR,
            "optimizer": {"type": "adamw", "weight_decay": WEIGHT_DECAY},
            "learning_rate_scheduler": {
                "warmup_fraction": WARMUP,
                "decay": "cosine",
                "t_0": max(1, total_steps - math.ceil(WARMUP * total_steps)),
            },
            "gradient_clipping": {"clipglobalnorm": 1.0},
            "early_stop": -1,  # every epoch runs
            "validation_field": label,
            "validation_metric": "loss",  # best weights by validation loss, as Plait
            "evaluate_training_set": False,
        },
        "backend": {"type": "local"},
    }


def run_plait(
    name: str,
    table: Path,
    label: str,
    epochs: int,
    folder: Path,
    plait_src: Path | None,
    variant: Variant,
) -> dict[str, Any]:
    tag, encoders, precision = variant
    slug = f"{name}-plait-" + "".join(c if c.isalnum() else "-" for c in tag)
    config = folder / f"{slug}.yaml"
    config.write_text(yaml.safe_dump(plait_config(name, epochs, encoders, precision)))
    run = folder / f"{slug}-run"
    cli = ["train", str(table), "--label", label, "--config", str(config), "--epochs", str(epochs)]
    command = [sys.executable, "-m", "plait.cli", *cli, "--out", str(run)]
    start = time.perf_counter()
    env = {**_env(), "PYTHONPATH": str(plait_src)} if plait_src else _env()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"plait failed ({result.returncode}):\n{result.stderr[-3000:]}")
    m = json.loads((run / "metrics.json").read_text())
    return {
        "epoch_seconds": m["epoch_seconds"],
        "train_seconds": m["train_seconds"],
        "wall": wall,
        "accuracy": m["test"]["accuracy"],
        "epochs": m["epochs"],
        "command": "plait " + " ".join(cli),
    }


def run_ludwig(
    name: str, table: Path, label: str, epochs: int, n_train: int, folder: Path, python: str
) -> dict[str, Any]:
    spec = {
        "config": ludwig_config(name, label, epochs, n_train),
        "dataset": str(table),
        "label": label,
        "output": str(folder / f"{name}-ludwig-results"),
        "result": str(folder / f"{name}-ludwig.json"),
    }
    spec_path = folder / f"{name}-ludwig-spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    command = [python, "-m", "bench.ludwig_compare", "--worker", str(spec_path)]
    log = folder / f"{name}-ludwig.log"
    start = time.perf_counter()
    with log.open("w") as out:
        # Run in the work folder: Ludwig drops lock and cache files in its working directory.
        env = {**_env(), "PYTHONPATH": str(REPO)}
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=env).returncode
    wall = time.perf_counter() - start
    if code:
        sys.exit(f"ludwig failed ({code}); log: {log}\n{log.read_text()[-3000:]}")
    return {**json.loads(Path(spec["result"]).read_text()), "wall": wall}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}


# ---------------------------------------------------------------- Ludwig side (its venv)
def _wav_reader() -> None:
    """torchaudio 2.11's load needs torchcodec (not installable here); Ludwig only needs
    (waveform (C, N) float32, rate) from it, so read the PCM WAVs with scipy instead."""
    import numpy as np
    import torch
    import torchaudio
    from scipy.io import wavfile

    def load(path: Any, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, int]:
        rate, data = wavfile.read(path)
        if data.dtype.kind == "i":
            data = data / float(np.iinfo(data.dtype).max)
        wave = torch.from_numpy(np.asarray(data, dtype=np.float32))
        return (wave[None] if wave.ndim == 1 else wave.T), int(rate)

    torchaudio.load = load


def worker(spec_path: Path) -> None:
    """Train with Ludwig's API; write epoch / eval / preprocessing times and test accuracy."""
    import logging

    import pandas as pd
    import torch

    torch.set_num_threads(THREADS)
    _wav_reader()
    from ludwig.api import LudwigModel
    from ludwig.callbacks import Callback

    spec = json.loads(spec_path.read_text())

    class Timer(Callback):
        def __init__(self) -> None:
            self.marks: dict[str, float] = {}
            self.epochs: list[float] = []
            self.evals: list[float] = []

        def on_preprocess_start(self, *a: Any, **k: Any) -> None:
            self.marks["pre"] = time.perf_counter()

        def on_preprocess_end(self, *a: Any, **k: Any) -> None:
            self.marks["preprocess"] = time.perf_counter() - self.marks["pre"]

        def on_epoch_start(self, *a: Any, **k: Any) -> None:
            self.marks["epoch"], self.marks["eval_sum"] = time.perf_counter(), 0.0

        def on_eval_start(self, *a: Any, **k: Any) -> None:
            self.marks["eval"] = time.perf_counter()

        def on_eval_end(self, *a: Any, **k: Any) -> None:
            seconds = time.perf_counter() - self.marks["eval"]
            self.marks["eval_sum"] += seconds
            self.evals.append(seconds)

        def on_epoch_end(self, *a: Any, **k: Any) -> None:
            self.epochs.append(time.perf_counter() - self.marks["epoch"] - self.marks["eval_sum"])

    timer = Timer()
    model = LudwigModel(spec["config"], logging_level=logging.INFO, callbacks=[timer])
    frame = pd.read_csv(spec["dataset"])
    start = time.perf_counter()
    _, (_, _, test_set, _), _ = model.train(
        dataset=frame,
        output_directory=spec["output"],
        skip_save_processed_input=True,
        skip_save_log=True,
    )
    train_call = time.perf_counter() - start
    stats, _, _ = model.evaluate(dataset=test_set)  # the best-validation weights, as Plait
    result = {
        "epoch_seconds": [round(s, 3) for s in timer.epochs],
        "eval_seconds": [round(s, 3) for s in timer.evals],
        "preprocess_seconds": round(timer.marks["preprocess"], 2),
        "train_call_seconds": round(train_call, 2),
        # Ludwig's "accuracy" is macro-averaged over classes; plain accuracy is "accuracy_micro".
        "accuracy": float(stats[spec["label"]]["accuracy_micro"]),
        "macro_accuracy": float(stats[spec["label"]]["accuracy"]),
        "epochs": len(timer.epochs),
        "threads": torch.get_num_threads(),
    }
    Path(spec["result"]).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


# ---------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="easy-vqa,av-digits")
    parser.add_argument("--vqa-epochs", type=int, default=3)
    parser.add_argument("--av-epochs", type=int, default=10)
    parser.add_argument("--ludwig-python", default="/work/ludwig-venv/bin/python")
    parser.add_argument("--limit", type=int, default=None, help="training rows kept (smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--plait-src", type=Path, default=None, help="run Plait from this src/ (e.g. a `git archive` of HEAD)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="Plait-then-Ludwig rounds per data set")
    parser.add_argument(
        "--variants", action="store_true", help="every Plait variant in VARIANTS, not only the default model"
    )
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    folder = args.out or Path(tempfile.mkdtemp(prefix="ludwig-compare-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {folder}; load average before: {os.getloadavg()}")
    for name in args.data.split(","):
        epochs = args.vqa_epochs if name == "easy-vqa" else args.av_epochs
        plait_csv, ludwig_csv, label, n_train = write_tables(name, folder, args.limit)
        rows = []
        for r in range(args.rounds):  # Plait then Ludwig, back to back, so machine noise hits both
            work = folder / f"round{r}"
            work.mkdir(exist_ok=True)
            for variant in VARIANTS[name][: None if args.variants else 1]:
                p = run_plait(name, plait_csv, label, epochs, work, args.plait_src, variant)
                p["load"] = os.getloadavg()
                print(f"{name} round {r} plait {variant[0]}: {json.dumps(p)}", flush=True)
                rows.append((f"Plait {variant[0]}", r, p, p["wall"] - p["train_seconds"]))
            lw = run_ludwig(name, ludwig_csv, label, epochs, n_train, work, args.ludwig_python)
            lw["load"] = os.getloadavg()
            print(f"{name} round {r} ludwig: {json.dumps(lw)}", flush=True)
            rows.append(("Ludwig", r, lw, lw["preprocess_seconds"]))
        print(f"\n{name}: {n_train} training rows, {epochs} epochs, batch {BATCH}, {THREADS} threads")
        print("| tool | round | s / epoch (median) | each epoch (s) | preprocessing s | wall s | test acc. |")
        print("|---|---|---|---|---|---|---|")
        for tool, r, res, pre in rows:
            each = ", ".join(f"{s:.1f}" for s in res["epoch_seconds"])
            pre_text = f"≤ {pre:.1f} (wall − training)" if tool.startswith("Plait") else f"{pre:.1f}"
            print(
                f"| {tool} | {r} | {statistics.median(res['epoch_seconds']):.2f} | {each} | {pre_text} | "
                f"{res['wall']:.1f} | {res['accuracy']:.4f} |"
            )
        tools = list(dict.fromkeys(t for t, *_ in rows))
        med = {
            tool: statistics.median([s for t, _, res, _ in rows if t == tool for s in res["epoch_seconds"]])
            for tool in tools
        }
        for tool in tools[:-1]:  # Ludwig last
            ratio = med["Ludwig"] / med[tool]
            print(f"speed ratio, Ludwig ÷ {tool} s/epoch (medians over all epochs): {ratio:.2f}×")
        print(f"plait command: {rows[0][2]['command']} --out RUN")


if __name__ == "__main__":
    main()

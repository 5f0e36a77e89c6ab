"""Training throughput: Plait (Lightning) vs a minimal hand-written PyTorch loop.

Same model (the demo's reference model, built by plait.build), same data (easy-VQA
training rows, already decoded and tokenised), same batch size, optimiser and
learning-rate schedule, measured in the same process, alternating A/B rounds so
background noise hits both. Prints samples/s for each and their ratio, and
inference rows/s of the Predictor.

    .venv/bin/python bench/throughput.py [--batches 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from plait.build import build_model
from plait.config import parse_config
from plait.data.builtin import DEMO_CONFIG, easy_vqa
from plait.data.datamodule import make_loader, split_frame
from plait.data.dataset import TableDataset
from plait.data.schema import resolve_config
from plait.predictor import Predictor
from plait.system import MultimodalSystem
from plait.train import fit_processors


def prepare():
    frame = easy_vqa()
    cfg = resolve_config(frame, parse_config(DEMO_CONFIG), ["answer"])
    train, _, test = split_frame(frame, cfg.split_column, cfg.trainer.val_fraction, cfg.seed)
    processors, targets = fit_processors(cfg, train, Path("."))
    train_ds = TableDataset.from_frame(train, processors, targets, training=True)
    test_ds = TableDataset.from_frame(test, processors, targets)
    return cfg, processors, targets, train_ds, test_ds


def hand_written(cfg, processors, targets, ds: TableDataset, batches: int) -> float:
    """The minimal loop: permute, gather, normalise, forward, loss, backward, step."""
    torch.manual_seed(0)
    model = build_model(cfg, processors, targets).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.trainer.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.trainer.learning_rate, total_steps=batches)
    images, questions = ds.columns["image"], ds.columns["question"]
    labels = ds.targets["answer"]
    mean = torch.tensor(processors["image"].mean_).view(1, -1, 1, 1)
    std = torch.tensor(processors["image"].std_).view(1, -1, 1, 1)
    bs = cfg.trainer.batch_size
    order = torch.randperm(len(ds))
    start = time.perf_counter()
    for b in range(batches):
        rows = order[b * bs : (b + 1) * bs]
        x_img = (images.values[images.index[rows]].float() / 255 - mean) / std
        inputs = {"image": x_img, "question": questions.values[rows]}
        present = {"image": images.present[rows], "question": questions.present[rows]}
        logits = model(inputs, present)["answer"]
        loss = torch.nn.functional.cross_entropy(logits, labels[rows])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return batches * bs / (time.perf_counter() - start)


def plait_loop(cfg, processors, targets, ds: TableDataset, batches: int) -> float:
    """The Lightning system exactly as `plait train` runs it (progress bar included)."""
    L.seed_everything(0, verbose=False)
    model = build_model(cfg, processors, targets)
    system = MultimodalSystem(model, {"answer": "category"}, {"answer": 13}, {"answer": 1.0}, cfg.trainer)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        enable_progress_bar=True,
        num_sanity_val_steps=0,
        deterministic="warn",
        callbacks=[TQDMProgressBar(refresh_rate=20)],  # as in plait.train
    )
    loader = make_loader(ds, cfg.trainer.batch_size, shuffle=True)
    start = time.perf_counter()
    trainer.fit(system, loader)
    return batches * cfg.trainer.batch_size / (time.perf_counter() - start)


def inference(cfg, processors, targets, ds: TableDataset) -> float:
    predictor = Predictor(cfg, processors, targets, build_model(cfg, processors, targets))
    start = time.perf_counter()
    predictor.evaluate_dataset(ds)
    return len(ds) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    cfg, processors, targets, train_ds, test_ds = prepare()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {cfg.trainer.batch_size}, {args.batches} batches × {args.rounds} rounds"
    )
    hand, plait = [], []
    for r in range(args.rounds):
        hand.append(hand_written(cfg, processors, targets, train_ds, args.batches))
        plait.append(plait_loop(cfg, processors, targets, train_ds, args.batches))
        print(f"round {r + 1}: hand-written {hand[-1]:.0f} samples/s, plait {plait[-1]:.0f} samples/s")
    h, p = statistics.median(hand), statistics.median(plait)
    print(
        f"median training throughput: hand-written {h:.0f} samples/s, plait {p:.0f} samples/s, "
        f"ratio {p / h:.3f}"
    )
    print(
        f"inference (Predictor, batch {cfg.trainer.eval_batch_size}): "
        f"{inference(cfg, processors, targets, test_ds):.0f} rows/s"
    )


if __name__ == "__main__":
    main()

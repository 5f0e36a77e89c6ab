"""Training throughput: Plait (Lightning) vs a minimal hand-written PyTorch loop.

Same model (the demo's reference model, built by plait.build), same data (easy-VQA
training rows, already decoded and tokenised), same batch size, optimiser and
learning-rate schedule, measured in the same process, alternating A/B rounds so
background noise hits both. Prints samples/s for each and their ratio, and
inference rows/s of the Predictor.

Then, once each (`--no-variants` skips them): Plait with `trainer.channels_last`,
with 1 and 2 DataLoader workers (the "auto" default is 0 for in-memory tables), and
with `trainer.compile` (steady state after a warm-up, the compile time apart); and
the decode cache: `TableDataset.from_frame` on the easy-VQA rows without the cache,
with a cold cache and with a warm one (a temporary PLAIT_CACHE_DIR).

    .venv/bin/python bench/throughput.py [--batches 500] [--rounds 3] [--no-variants]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
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
from plait.data.prepare import fit_processors
from plait.data.schema import resolve_config
from plait.predictor import Predictor
from plait.resume import GracefulStop, ResumeCheckpoint, SafeCheckpointIO
from plait.system import MultimodalSystem


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


class StepTimer(L.Callback):
    """Wall time from the start of batch `skip` to the end of training (steady state)."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end = skip, 0.0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.skip:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        self.end = time.perf_counter()


def plait_loop(
    cfg, processors, targets, ds: TableDataset, batches: int, skip: int = 0, **trainer: object
) -> float:
    """The Lightning system exactly as `plait train` runs it (progress bar included).
    `trainer`: TrainerConfig overrides (channels_last, compile, num_workers); `skip`:
    batches left out of the timing (warm-up, e.g. compiling)."""
    L.seed_everything(0, verbose=False)
    tc = cfg.trainer.model_copy(update=trainer)
    model = build_model(cfg, processors, targets)
    system = MultimodalSystem(model, {"answer": "category"}, {"answer": 13}, {"answer": 1.0}, tc)
    timer = StepTimer(skip)
    # The resumable checkpoint (every checkpoint_every_n_steps and at the epoch's end)
    # and the signal handling of plait.train, writing to a temporary folder.
    work = Path(tempfile.mkdtemp(prefix="plait-bench-"))
    last = ResumeCheckpoint(work / "last.ckpt", tc.checkpoint_every_n_steps)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=True,  # plait.train's resumable checkpoint
        enable_model_summary=False,
        gradient_clip_val=1.0,
        enable_progress_bar=True,
        num_sanity_val_steps=0,
        deterministic="warn",
        callbacks=[
            TQDMProgressBar(refresh_rate=20),
            timer,
            GracefulStop(last, ""),
            last,
        ],  # as in plait.train
        plugins=[SafeCheckpointIO()],
    )
    loader = make_loader(ds, tc.batch_size, shuffle=True, num_workers=tc.num_workers)
    last.loader = loader
    start = time.perf_counter()
    trainer.fit(system, loader)
    shutil.rmtree(work, ignore_errors=True)
    if skip:
        print(f"  (first {skip} batches, compiling included: {timer.start - start:.1f} s)")
        return (batches - skip) * tc.batch_size / (timer.end - timer.start)
    return batches * tc.batch_size / (time.perf_counter() - start)


def inference(cfg, processors, targets, ds: TableDataset) -> float:
    predictor = Predictor(cfg, processors, targets, build_model(cfg, processors, targets))
    start = time.perf_counter()
    predictor.evaluate_dataset(ds)
    return len(ds) / (time.perf_counter() - start)


def decode_cache_seconds() -> dict[str, float]:
    """Seconds of `TableDataset.from_frame` on every easy-VQA row (processors fitted on the
    training rows): without the cache, cold (decode + store) and warm (read back)."""
    frame = easy_vqa()
    cfg = resolve_config(frame, parse_config(DEMO_CONFIG), ["answer"])
    train, _, _ = split_frame(frame, cfg.split_column, cfg.trainer.val_fraction, cfg.seed)
    processors, targets = fit_processors(cfg, train, Path("."))
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="plait-bench-cache-") as folder:
        previous = os.environ.get("PLAIT_CACHE_DIR")
        os.environ["PLAIT_CACHE_DIR"] = folder
        try:
            for name, cache in (("no cache", False), ("cold cache", True), ("warm cache", True)):
                start = time.perf_counter()
                TableDataset.from_frame(frame, processors, targets, cache=cache)
                seconds[name] = time.perf_counter() - start
            stored = sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))
            print(f"decode cache: {len(frame)} rows, {stored / 2**20:.1f} MiB on disk")
        finally:
            if previous is None:
                os.environ.pop("PLAIT_CACHE_DIR", None)
            else:
                os.environ["PLAIT_CACHE_DIR"] = previous
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-variants", dest="variants", action="store_false")
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
    if not args.variants:
        return
    variants = {
        "channels_last": {"channels_last": True},
        "1 worker": {"num_workers": 1},
        "2 workers": {"num_workers": 2},
        "compile (steady state)": {"compile": True},
    }
    for name, options in variants.items():
        skip = 50 if options.get("compile") else 0
        try:
            rate = plait_loop(cfg, processors, targets, train_ds, args.batches, skip, **options)
        except Exception as err:  # noqa: BLE001 - e.g. no C++ compiler for torch.compile
            print(f"plait {name}: did not run ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
            continue
        print(f"plait {name}: {rate:.0f} samples/s ({rate / h:.3f} × hand-written median)")
    for name, sec in decode_cache_seconds().items():
        print(f"TableDataset.from_frame, {name}: {sec:.2f} s")


if __name__ == "__main__":
    main()

"""Scaling out: trainer device settings, rank detection, and DDP over gloo on 2 CPU processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from lightning.pytorch.utilities.rank_zero import rank_zero_only as lightning_rank_zero_only
from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only

from plait.config import PlaitConfig, TrainerConfig, apply_overrides, parse_config
from plait.distributed import global_rank
from plait.errors import ConfigError
from plait.evaluation.retrieval import RetrievalMetrics

PLAIT = [sys.executable, "-m", "plait.cli"]


def plait(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PLAIT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"strategy": "dp"}, "strategy must be one of auto, ddp, ddp_spawn, fsdp; got 'dp'"),
        ({"precision": "17"}, "precision must be one of 32-true, bf16-mixed, 16-mixed"),
        ({"num_nodes": 0}, "trainer.num_nodes"),
    ],
)
def test_trainer_config_rejects(trainer: dict, message: str):
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"trainer": trainer})
    assert "\n" not in str(info.value)


def test_short_precision_names_still_accepted():
    assert parse_config({"trainer": {"precision": "bf16"}}).trainer.precision == "bf16-mixed"
    assert parse_config({"trainer": {"precision": "32"}}).trainer.precision == "32-true"


def test_defaults_do_not_distribute():
    tc = TrainerConfig()
    assert (tc.devices, tc.num_nodes, tc.strategy, tc.precision) == (1, 1, "auto", "32-true")
    assert global_rank(tc) == 0


def test_overrides_are_validated():
    cfg = apply_overrides(PlaitConfig(), devices=2, strategy="ddp", num_nodes=None)
    assert (cfg.trainer.devices, cfg.trainer.strategy, cfg.trainer.num_nodes) == (2, "ddp", 1)
    with pytest.raises(ConfigError, match="command line: strategy: .*got 'dpp'"):
        apply_overrides(PlaitConfig(), strategy="dpp")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"strategy": "fsdp"}, "cannot run here: The strategy `fsdp` requires a GPU accelerator"),
        ({"precision": "16-mixed"}, "precision '16-mixed' needs a GPU; on CPU use bf16-mixed or 32-true"),
    ],
)
def test_settings_this_machine_cannot_run(settings: dict, message: str):
    with pytest.raises(ConfigError, match=message) as info:
        global_rank(TrainerConfig(accelerator="cpu", **settings))
    assert "\n" not in str(info.value)


def test_rank_comes_from_the_launcher_environment(monkeypatch: pytest.MonkeyPatch):
    # Lightning records the rank process-wide; keep it 0 for the tests that follow.
    for holder in (lightning_rank_zero_only, utils_rank_zero_only):
        monkeypatch.setattr(holder, "rank", getattr(holder, "rank", 0))
    # What Lightning's `ddp` launcher sets for the second process of this machine.
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert global_rank(TrainerConfig(accelerator="cpu", devices=2, strategy="ddp")) == 1
    monkeypatch.setenv("NODE_RANK", "1")
    assert global_rank(TrainerConfig(accelerator="cpu", devices=2, num_nodes=2, strategy="ddp")) == 3


@pytest.mark.slow
def test_cli_rejects_bad_scale_out_flags(tmp_path: Path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": ["p", "q", "p", "q"]}).to_csv(table, index=False)
    result = plait("train", table, "--label", "y", "--out", tmp_path / "run", "--strategy", "dpp")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: command line: strategy: strategy must be one of auto, ddp, ddp_spawn, fsdp; got 'dpp'"
    ]
    result = plait(
        "train",
        table,
        "--label",
        "y",
        "--out",
        tmp_path / "run",
        "--accelerator",
        "cpu",
        "--precision",
        "16-mixed",
    )
    assert result.returncode == 2
    assert "needs a GPU" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gather_worker(rank: int, port: int, emb: torch.Tensor, groups: torch.Tensor, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    metrics = RetrievalMetrics(["image", "caption"])
    half = len(emb) // 2
    rows = slice(0, half) if rank == 0 else slice(half, None)  # each process sees its shard
    metrics.update(emb[rows], groups[rows])
    (out / f"{rank}.json").write_text(json.dumps(metrics.compute()))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_retrieval_metrics_gather_every_process(tmp_path: Path):
    gen = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(40, 2, 8, generator=gen), dim=-1)  # (N, towers, D)
    groups = torch.arange(40)[:, None].repeat(1, 2)  # each row its own image and caption
    whole = RetrievalMetrics(["image", "caption"])
    whole.update(emb, groups)
    expected = whole.compute()
    mp.spawn(_gather_worker, args=(_free_port(), emb, groups, tmp_path), nprocs=2, join=True)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == pytest.approx(expected)


def _separable_table(path: Path, rows: int = 400) -> None:
    """label = sign(a + b); a fixed train / val / test split."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    split = np.array(
        ["train"] * (rows * 7 // 10) + ["val"] * (rows * 15 // 100) + ["test"] * (rows * 15 // 100)
    )
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": np.where(x.sum(1) > 0, "yes", "no")})
    frame["split"] = split
    frame.to_csv(path, index=False)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one(tmp_path: Path):
    """`plait train --devices 2 --strategy ddp` (two CPU processes, gloo) against one process.

    The global batch is equal (16 on one process; 8 per process on two), the seed and
    split are equal, so both start from the same weights and take the same number of
    steps of the same size; the order of rows within an epoch differs (DistributedSampler
    shards the shuffled rows), so the runs are not bit-identical. The task is separable,
    so the honest check is: both learn it (accuracy >= 0.9 on validation and test) and
    every reported metric agrees within 0.1. And DDP writes exactly one complete run
    folder, with no temporary folder left beside it.
    """
    table = tmp_path / "t.csv"
    _separable_table(table)
    runs = {}
    for devices, batch in ((1, 16), (2, 8)):
        config = tmp_path / f"c{devices}.yaml"
        trainer = {"epochs": 5, "batch_size": batch, "learning_rate": 0.01, "patience": 5, "progress": False}
        config.write_text(yaml.safe_dump({"split_column": "split", "trainer": trainer}))
        out = tmp_path / "runs" / f"d{devices}"
        args = [
            "train",
            table,
            "-l",
            "label",
            "-c",
            config,
            "--out",
            out,
            "--seed",
            "1",
            "--accelerator",
            "cpu",
        ]
        result = plait(*args, "--devices", str(devices), *(["--strategy", "ddp"] if devices > 1 else []))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("run folder:") == 1  # one process reports
        runs[devices] = json.loads((out / "metrics.json").read_text())
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["d1", "d2"]  # no leftovers
    assert {p.name for p in (tmp_path / "runs" / "d2").iterdir()} >= {
        "config.yaml",
        "processors.json",
        "model.safetensors",
        "metrics.json",
        "log.csv",
        "plait.json",
    }
    assert yaml.safe_load((tmp_path / "runs" / "d2" / "config.yaml").read_text())["trainer"]["devices"] == 2
    for split in ("validation", "test"):
        one, two = runs[1][split], runs[2][split]
        assert one["accuracy"] >= 0.9 and two["accuracy"] >= 0.9, (one, two)
        for name in one:
            assert two[name] == pytest.approx(one[name], abs=0.1), (split, name)
    assert runs[1]["rows"] == runs[2]["rows"]

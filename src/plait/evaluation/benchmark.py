"""`plait benchmark`: every listed fusion (and each input alone) with the same
encoders, data, seeds and budget, side by side.

Per method: the task's primary metric on the held-out rows (test split when the
table has one, else validation) as mean ± std over seeds, parameters, training
seconds per epoch, inference latency per row, peak memory (each run trains in its
own process) and the metric with each input removed (through its presence mask).
Written as OUT/benchmark.csv (one row per run), OUT/summary.csv, OUT/benchmark.png and
OUT/report.html (the table and plot on one self-contained page).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from plait.config import ComponentSpec, PlaitConfig, ResolvedConfig, apply_overrides, as_config, input_units
from plait.data.datamodule import split_frame
from plait.data.fingerprint import media_columns
from plait.data.prepare import split_group
from plait.data.schema import resolve_config
from plait.data.table import Table, read_table
from plait.errors import ConfigError
from plait.evaluation.metrics import PRIMARY_METRIC
from plait.fusion import FUSIONS
from plait.inference import table_dataset
from plait.output_paths import table_inputs
from plait.report.benchmark import save_benchmark_report
from plait.runfolder import staging
from plait.train import default_run_dir, fit


def benchmark(
    data: str | Path | pd.DataFrame,
    label: str,
    fusions: list[str],
    config: str | Path | dict[str, Any] | PlaitConfig | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    seeds: int = 1,
    types: dict[str, str] | None = None,
    base_dir: str | Path | None = None,
    unimodal: bool = True,
    overwrite: bool = False,
    verbose: bool = True,
) -> pd.DataFrame:
    """Train every variant and return the summary table (one row per variant)."""
    if fusions == ["all"]:
        fusions = FUSIONS.names()
    for name in fusions:
        FUSIONS.get(name)  # unknown names fail before any training
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    base = apply_overrides(as_config(config), epochs=epochs)  # validated before any work
    table = read_table(data, base_dir)
    resolved = resolve_config(table.frame, base, [label], types)
    variants = {f: resolved.model_copy(update={"fusion": ComponentSpec(name=f)}, deep=True) for f in fusions}
    units = input_units(resolved)
    if unimodal and len(units) > 1:
        for key, members in units.items():
            variants[f"only {key}"] = resolved.model_copy(
                update={"inputs": members, "fusion": ComponentSpec(name="concat")}, deep=True
            )
    out_dir = Path(out) if out else default_run_dir([label, "benchmark"])
    metric = PRIMARY_METRIC[resolved.outputs[0].type]
    rows = []
    inputs = table_inputs(data, table.frame, table.base_dir, media_columns(resolved))
    with staging(out_dir, overwrite, inputs) as tmp:
        for name, cfg in variants.items():
            for seed in range(seeds):
                if verbose:
                    print(f"{name} (seed {seed})", flush=True)
                run = tmp / "runs" / f"{name.replace(' ', '_')}-seed{seed}"
                seeded = apply_overrides(cfg, seed=seed)
                # A fresh process per run, so its peak memory is its own (and a crash in
                # one method cannot take the others down with it).
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    job = pool.submit(_train_and_measure, name, seed, table, label, seeded, metric, run)
                    rows.append(job.result())
        runs = pd.DataFrame(rows)
        summary = summarise(runs, metric)
        runs.to_csv(tmp / "benchmark.csv", index=False)
        summary.to_csv(tmp / "summary.csv", index=False)
        plot(summary, metric, tmp / "benchmark.png")
        save_benchmark_report(tmp, shown_as=out_dir)  # OUT/report.html; a failure is only logged
    return summary


def _train_and_measure(
    name: str, seed: int, table: Table, label: str, cfg: ResolvedConfig, metric: str, run: Path
) -> dict:
    """Runs in a child process: train one variant, then measure it."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    predictor = fit(table.frame, label=label, config=cfg, out=run, base_dir=table.base_dir, verbose=False)
    row = _measure(name, seed, predictor, table, cfg, metric, run)
    # Peak resident memory of this process (training and evaluation, the data included;
    # ru_maxrss is in KiB on Linux). On a GPU also the peak of tensors allocated there.
    row["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        row["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def _measure(
    name: str, seed: int, predictor: Any, table: Table, cfg: ResolvedConfig, metric: str, run: Path
) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    trained = predictor.config  # the run's own: its sized trainer settings (plait.recipe)
    _, val, test = split_frame(
        table.frame, trained.split_column, trained.trainer.val_fraction, trained.seed, split_group(trained)
    )
    held = test if len(test) else val
    _, dataset = table_dataset(predictor.run, held, with_targets=True, base_dir=table.base_dir)
    start = time.perf_counter()
    scores = predictor.evaluate_dataset(dataset)
    latency_ms = 1000 * (time.perf_counter() - start) / len(dataset)
    row = {
        "method": name,
        "seed": seed,
        "held_out": "test" if len(test) else "validation",
        metric: scores[metric],
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "seconds_per_epoch": metrics["train_seconds"] / max(1, metrics["epochs"]),
        "latency_ms_per_row": latency_ms,
    }
    if len(predictor.processors) > 1:
        for key in predictor.processors:
            row[f"{metric} without {key}"] = predictor.evaluate_dataset(dataset, drop={key})[metric]
    return row


def summarise(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    numeric = [c for c in runs.columns if c not in ("method", "seed", "held_out")]
    grouped = runs.groupby("method", sort=False)
    summary = grouped[numeric].mean().reset_index()
    summary.insert(2, f"{metric}_std", grouped[metric].std(ddof=1).fillna(0.0).to_numpy())
    return summary


def plot(summary: pd.DataFrame, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(summary)), 4))
    ax.bar(summary["method"], summary[metric], yerr=summary[f"{metric}_std"], capsize=3, color="#4c72b0")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by method (held-out rows)")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Commands that train: demo, train, cv, benchmark, tune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli import render
from plait.cli.options import (
    Candidates,
    ConfigFile,
    Data,
    Epochs,
    FusionName,
    Label,
    Metric,
    OnBadRow,
    Overwrite,
    Preset,
    Seed,
    TimeLimit,
    Types,
    machine_settings,
    speed_settings,
    split_list,
    user_config,
)
from plait.cli.process import started


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to write (replaced if present).")] = Path(
        "runs/demo"
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the reference model (image CNN + text GRU, concatenated) on easy-VQA."""
    from plait.config import apply_overrides, parse_config
    from plait.data.builtin import DEMO_CONFIG, easy_vqa
    from plait.train import fit

    # Validated before the data set is read.
    cfg = apply_overrides(parse_config(DEMO_CONFIG), epochs=epochs, seed=seed)
    render.err.print("easy-VQA: 64×64 shapes + questions → 13 answers (official train/test split)")
    predictor = fit(easy_vqa(), label="answer", config=cfg, out=out_dir, overwrite=True)
    render.run_metrics(predictor.run_dir or out_dir, {"test": "easy-VQA test set"})


def train(
    data: Annotated[
        str,
        typer.Argument(
            help="CSV, Parquet or JSONL table; or a folder or fsspec URL of Parquet shards (streamed)."
        ),
    ],
    label: Label = None,
    config: ConfigFile = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder to write.")] = None,
    epochs: Epochs = None,
    seed: Seed = None,
    types: Types = None,
    fusion: FusionName = None,
    preset: Preset = None,
    time_limit: TimeLimit = None,
    candidates: Candidates = None,
    metric: Metric = None,
    on_bad_row: OnBadRow = None,
    overwrite: Overwrite = False,
    retrieval: Annotated[
        str | None,
        typer.Option(
            help="Embed these image/text/audio columns into one space (comma-separated, e.g. "
            "image,caption): a contrastive retrieval task, alone or beside --label targets."
        ),
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu, … (default: auto).")] = None,
    devices: Annotated[
        str | None, typer.Option(help="Devices per node: a count, 'auto' or GPU ids (default 1).")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Machines taking part (default 1).")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto (default), ddp, ddp_spawn or fsdp.")] = None,
    precision: Annotated[
        str | None, typer.Option(help="32-true (default), bf16-mixed, 16-mixed (GPU), bf16-true, …")
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Decode every image/audio/text cell afresh instead of using the decode cache "
            "($PLAIT_CACHE_DIR/decoded), and store nothing there.",
        ),
    ] = False,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Model and image batches in channels-last memory format.")
    ] = False,
    compiled: Annotated[
        bool, typer.Option("--compile", help="torch.compile the encoders and fusion (slow first steps).")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue an interrupted run from its last checkpoint: the run folder it was "
            "writing (its --out) or a checkpoint file. Give the same data and config."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Save a resumable checkpoint every N steps (default 200).")
    ] = None,
) -> None:
    """Train a model on your own table (a file, or a folder / URL of Parquet shards, streamed)."""
    from plait.config import apply_overrides
    from plait.data.schema import parse_type_overrides
    from plait.train import fit

    cfg = apply_overrides(
        user_config(config, on_bad_row, fusion, preset, time_limit, candidates, metric),
        **machine_settings(accelerator, devices, num_nodes, strategy, precision),
        **speed_settings(channels_last, compiled, checkpoint_every, no_cache),
    )
    predictor = fit(
        data,
        label=label,
        retrieval=split_list(retrieval) if retrieval else None,
        config=cfg,
        out=out_dir,
        epochs=epochs,
        seed=seed,
        types=parse_type_overrides(types or []),
        overwrite=overwrite,
        resume=resume,
        started=started(),
    )
    if predictor.run_dir is not None:  # else another process of a DDP run: rank 0 reports
        render.run_metrics(predictor.run_dir, {"validation": "validation set", "test": "test set"})


def cv(
    data: Data,
    label: Label = None,
    folds: Annotated[int, typer.Option(help="Number of folds.")] = 5,
    config: ConfigFile = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the fold runs.")] = None,
    epochs: Epochs = None,
    seed: Seed = None,
    types: Types = None,
    fusion: FusionName = None,
    preset: Preset = None,
    candidates: Candidates = None,
    metric: Metric = None,
    on_bad_row: OnBadRow = None,
    overwrite: Overwrite = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """K-fold cross-validation: mean ± std of each test metric over the folds."""
    from plait.data.schema import parse_type_overrides
    from plait.evaluation.cv import cross_validate

    summary = cross_validate(
        data,
        label=label,
        folds=folds,
        config=user_config(config, on_bad_row, fusion, preset, candidates=candidates, metric=metric),
        out=out_dir,
        epochs=epochs,
        seed=seed,
        types=parse_type_overrides(types or []),
        overwrite=overwrite,
        verbose=not as_json,
    )
    if as_json:
        print(json.dumps(summary))
    else:
        render.cv_summary(summary, folds)


def benchmark(
    data: Data,
    label: Annotated[str, typer.Option("--label", "-l", help="Target column.")],
    fusions: Annotated[str, typer.Option(help="Comma-separated fusion methods, or 'all'.")] = "all",
    config: ConfigFile = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for runs, CSV and plot.")
    ] = None,
    epochs: Epochs = None,
    seeds: Annotated[int, typer.Option(help="Seeds per method (mean ± std).")] = 1,
    unimodal: Annotated[bool, typer.Option(help="Also train each input alone.")] = True,
    types: Types = None,
    on_bad_row: OnBadRow = None,
    overwrite: Overwrite = False,
) -> None:
    """Compare fusion methods (and single inputs) with the same encoders and budget."""
    from plait.data.schema import parse_type_overrides
    from plait.evaluation.benchmark import benchmark as compare

    summary = compare(
        data,
        label=label,
        fusions=split_list(fusions),
        config=user_config(config, on_bad_row),
        out=out_dir,
        epochs=epochs,
        seeds=seeds,
        unimodal=unimodal,
        types=parse_type_overrides(types or []),
        overwrite=overwrite,
    )
    render.frame_text(summary, ".4g")


def tune(
    data: Data,
    label: Label = None,
    config: ConfigFile = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the best trial.")] = Path(
        "runs/tune"
    ),
    trials: Annotated[
        int | None, typer.Option(help="Trials to run (with --time-limit: whichever ends first).")
    ] = None,
    time_limit: TimeLimit = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the search a killed `plait tune` left in --out's work folder.")
    ] = False,
    overwrite: Overwrite = False,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    preset: Preset = None,
    metric: Metric = None,
) -> None:
    """Search learning rate, weight decay, batch size, fusion and feature dropout (Optuna:
    TPE sampler, median pruner); the best trial becomes --out, with trials.csv and
    search.png. With --preset best, its settings are trained again with the ensemble."""
    from plait.config import parse_duration
    from plait.tune import tune as search

    limit = parse_duration(time_limit) if time_limit else None
    cfg = user_config(config, None, preset=preset, metric=metric)
    table = search(data, label, cfg, out_dir, trials, limit, resume, overwrite, seed, started())
    render.frame_text(table, ".4g")
    render.out.print(f"run folder: {out_dir}", soft_wrap=True)

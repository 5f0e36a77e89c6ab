"""Commands that measure a trained run: evaluate, explain, report, leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli import render
from plait.cli.options import AsJson, OnBadRowRead, Run, noise_levels, row_numbers


def evaluate(
    run: Run,
    data: Annotated[
        str, typer.Argument(help="Labelled table; or a folder or fsspec URL of Parquet shards (streamed).")
    ],
    as_json: AsJson = False,
    robustness: Annotated[
        bool,
        typer.Option(
            "--robustness",
            help="Also evaluate with each input removed, all but one removed, and each input "
            "corrupted at increasing noise levels (MultiBench relative/effective robustness).",
        ),
    ] = False,
    levels: Annotated[
        str, typer.Option(help="Noise levels in (0, 1], comma-separated (with --robustness).")
    ] = "0.2,0.4,0.6,0.8,1.0",
    baseline: Annotated[
        Path | None,
        typer.Option(help="Run to compare with for effective robustness (MultiBench: a late-fusion run)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the corruption noise.")] = 0,
    on_bad_row: OnBadRowRead = None,
) -> None:
    """Print a run's metrics on a labelled table (and, with --robustness, how they degrade)."""
    from plait.predictor import Predictor
    from plait.report import save_result

    predictor = Predictor.load(run, on_bad_row)
    if not robustness:
        metrics = predictor.evaluate(data)
        if as_json:
            print(json.dumps(metrics))
        else:
            render.metrics(metrics, f"{data}")
        return
    noise = noise_levels(levels)
    reference = Predictor.load(baseline, on_bad_row) if baseline is not None else None
    report = predictor.robustness(data, levels=noise, seed=seed, baseline=reference)
    save_result(run, "robustness.json", report.to_dict())  # for the run's report.html
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        render.robustness(report, f"{data}", baseline)


def explain(
    run: Run,
    data: Annotated[Path, typer.Argument(help="Labelled held-out table.")],
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the 95% intervals (0: none).")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the resampling and permutations.")] = 0,
    target: Annotated[str | None, typer.Option(help="Target to explain (default: the first).")] = None,
    benchmark: Annotated[
        Path | None, typer.Option(help="A plait benchmark folder: compare its single-input models.")
    ] = None,
    rows: Annotated[
        str | None, typer.Option(help="Explain these rows' predictions instead (1-based, comma-separated).")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="With --rows: write image saliency PNGs here.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="With --output-dir: replace saliency PNGs already there.")
    ] = False,
    as_json: AsJson = False,
    on_bad_row: OnBadRowRead = None,
) -> None:
    """Which inputs the model relies on: the metric with each one removed, permuted or alone."""
    from plait.predictor import Predictor
    from plait.report import save_result

    predictor = Predictor.load(run, on_bad_row)
    if rows is not None:
        result = predictor.explain_rows(data, row_numbers(rows), output_dir, target, overwrite=overwrite)
        if as_json:
            print(result.to_json(orient="records"))
        else:
            render.frame_text(result, ".4f")
        return
    importance = predictor.explain(data, bootstrap=bootstrap, seed=seed, target=target, benchmark=benchmark)
    saved = save_result(run, "importance.json", importance.to_dict())
    if as_json:
        print(json.dumps(importance.to_dict()))
        return
    render.importance(importance)
    if saved is not None:
        render.err.print(f"saved {saved} (and {run / 'report.html'})")


def report(run: Run) -> None:
    """Rebuild RUN/report.html: one self-contained page, viewable offline.

    Data summary, learning curves, evaluation plots, and modality importance and
    robustness when plait explain / plait evaluate --robustness saved them.
    """
    from plait.report import write_report

    print(write_report(run))


def leaderboard(run: Run, as_json: AsJson = False) -> None:
    """Each candidate's validation score, fit time, prediction time per row and weight
    in the ensemble (runs trained with --preset best or --candidates)."""
    from plait.ensemble import read_leaderboard

    board = read_leaderboard(run)
    if as_json:
        print(board.to_json(orient="records"))
    else:
        render.frame_text(board, ".4g")

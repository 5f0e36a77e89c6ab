"""The `plait` command: thin wrappers over the Python API.

User mistakes (PlaitError) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from plait.errors import PlaitError, PlaitWarning

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Plait: multimodal learning on tables of images, text, numbers and categories.",
)
out = Console()
err = Console(stderr=True)
# When `plait` started (main()), before torch is imported: --time-limit covers the
# whole command. None when the app is called in-process (tests): then the command's start.
STARTED: float | None = None
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a PlaitError into one line on stderr and exit code 2 (no traceback), and
    each PlaitWarning into one line on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with one_line_warnings():
                return fn(*args, **kwargs)
        except PlaitError as error:
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(getattr(error, "exit_code", 2)) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Each PlaitWarning as `warning: ...` on stderr, once per command however often it
    is raised (cv and benchmark resolve the table once per run); other warnings as usual."""
    shown: set[str] = set()
    with warnings.catch_warnings():
        default = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if not issubclass(category, PlaitWarning):
                default(message, category, *args, **kwargs)
            elif str(message) not in shown:
                shown.add(str(message))
                print(f"warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield


# Options shared by `train` and `cv`.
Data = Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL table.")]
Label = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="Target column (repeatable); or outputs: in the config."),
]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config.")]
Epochs = Annotated[int | None, typer.Option(help="Training epochs.")]
Seed = Annotated[int | None, typer.Option(help="Random seed.")]
Types = Annotated[list[str] | None, typer.Option("--type", "-t", help="Override a column type: COL=TYPE.")]
Overwrite = Annotated[bool, typer.Option(help="Replace --out if it exists.")]
OverwriteOutput = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output file(s) if they exist.")
]
Preset = Annotated[
    str | None,
    typer.Option(
        help="fast (networks from scratch), medium (default: shipped pretrained image and text "
        "encoders, frozen and cached) or best (medium, trained longer). The config's own choices win."
    ),
]
TimeLimit = Annotated[
    str | None,
    typer.Option(
        "--time-limit",
        help="Wall-clock budget of the whole command, e.g. 10m, 90s, 1h30m: training stops in time "
        "and keeps its best checkpoint.",
    ),
]
FusionName = Annotated[
    str | None, typer.Option("--fusion", "-f", help="Fusion method (see plait.list_fusions()).")
]
OnBadRow = Annotated[
    str | None,
    typer.Option(
        "--on-bad-row",
        help="An unreadable file or a bad number: error (default), missing (treat the cell as "
        "missing) or skip (leave the row out); counted either way.",
    ),
]
# evaluate, explain, predict: the same choice, over the run's own on_bad_row.
OnBadRowRead = Annotated[
    str | None,
    typer.Option(
        "--on-bad-row",
        help="An unreadable file or a bad number: error, missing (treat the cell as missing) or "
        "skip (leave the row out; predict keeps it, as missing); counted either way. "
        "Default: the run's setting.",
    ),
]


DataRoot = Annotated[
    Path | None,
    typer.Option(
        "--data-root",
        help="Refuse media files (image/audio cells) that resolve outside this folder, symlinks "
        "followed; such a cell counts as a bad row. Default: $PLAIT_DATA_ROOT, else anywhere.",
    ),
]


def confine(root: Path | None) -> None:
    """Apply --data-root (or PLAIT_DATA_ROOT) to every table this command reads."""
    from plait.data.paths import set_data_root

    set_data_root(root)


def user_config(
    path: Path | None,
    on_bad_row: str | None,
    fusion: str | None = None,
    preset: str | None = None,
    time_limit: str | None = None,
) -> Any:
    """The --config file (or defaults), with --on-bad-row, --fusion, --preset and
    --time-limit applied and validated as in a config file."""
    from plait.config import apply_overrides, as_config

    return apply_overrides(
        as_config(path), fusion=fusion, time_limit=time_limit, on_bad_row=on_bad_row, preset=preset
    )


def check_writable(output: Path, overwrite: bool, run: Path | None, data: Any = None) -> None:
    """Before any work: --output is neither an input (the table, a file of the run
    folder) nor an existing file without --overwrite (plait.output_paths)."""
    from plait.output_paths import check_output_file, table_inputs

    inputs = table_inputs(data)
    if run is not None:
        inputs.add_folder(run, f"a file of the run folder {run}")
    check_output_file(output, overwrite, inputs)


def split_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def print_metrics(metrics: dict[str, float], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    out.print(table)


@app.command()
@user_errors
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
    err.print("easy-VQA: 64×64 shapes + questions → 13 answers (official train/test split)")
    predictor = fit(easy_vqa(), label="answer", config=cfg, out=out_dir, overwrite=True)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    print_metrics(metrics["test"], "easy-VQA test set")
    out.print(f"run folder: {predictor.run_dir}")


@app.command()
@user_errors
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
    data_root: DataRoot = None,
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
    compile_model: Annotated[
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
    confine(data_root)
    from plait.config import apply_overrides
    from plait.data.schema import parse_type_overrides
    from plait.train import fit

    cfg = apply_overrides(
        user_config(config, on_bad_row, fusion, preset, time_limit),
        accelerator=accelerator,
        devices=int(devices) if devices is not None and devices.isdigit() else devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        channels_last=channels_last or None,  # a flag only switches on; the config may too
        compile=compile_model or None,
        checkpoint_every_n_steps=checkpoint_every,
        cache=False if no_cache else None,  # a flag only switches off; the config may too
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
        started=STARTED or time.monotonic(),
    )
    if predictor.run_dir is None:  # another process of a DDP run: rank 0 writes and reports
        return
    metrics = json.loads((predictor.run_dir / "metrics.json").read_text())
    for split in ("validation", "test"):
        if split in metrics:
            print_metrics(metrics[split], f"{split} set")
    out.print(f"run folder: {predictor.run_dir}")


@app.command()
@user_errors
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
    on_bad_row: OnBadRow = None,
    overwrite: Overwrite = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    data_root: DataRoot = None,
) -> None:
    """K-fold cross-validation: mean ± std of each test metric over the folds."""
    confine(data_root)
    from plait.data.schema import parse_type_overrides
    from plait.evaluation.cv import cross_validate

    summary = cross_validate(
        data,
        label=label,
        folds=folds,
        config=user_config(config, on_bad_row, fusion, preset),
        out=out_dir,
        epochs=epochs,
        seed=seed,
        types=parse_type_overrides(types or []),
        overwrite=overwrite,
        verbose=not as_json,
    )
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"{folds}-fold cross-validation (test folds)", title_justify="left")
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for name, mean in summary["mean"].items():
        table.add_row(name, f"{mean:.4f} ± {summary['std'][name]:.4f}")
    out.print(table)


@app.command(name="benchmark")
@user_errors
def benchmark_command(
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
    data_root: DataRoot = None,
) -> None:
    """Compare fusion methods (and single inputs) with the same encoders and budget."""
    confine(data_root)
    from plait.data.schema import parse_type_overrides
    from plait.evaluation.benchmark import benchmark

    summary = benchmark(
        data,
        label=label,
        fusions=[f.strip() for f in fusions.split(",") if f.strip()],
        config=user_config(config, on_bad_row),
        out=out_dir,
        epochs=epochs,
        seeds=seeds,
        unimodal=unimodal,
        types=parse_type_overrides(types or []),
        overwrite=overwrite,
    )
    # Plain text, not a rich table: the columns are many and must not be truncated.
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@app.command()
@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data: Annotated[
        str, typer.Argument(help="Labelled table; or a folder or fsspec URL of Parquet shards (streamed).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
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
    data_root: DataRoot = None,
) -> None:
    """Print a run's metrics on a labelled table (and, with --robustness, how they degrade)."""
    confine(data_root)
    from plait.predictor import Predictor
    from plait.report import save_result

    predictor = Predictor.load(run, on_bad_row)
    if not robustness:
        metrics = predictor.evaluate(data)
        if as_json:
            print(json.dumps(metrics))
        else:
            print_metrics(metrics, f"{data}")
        return
    try:
        noise_levels = [float(v) for v in levels.split(",") if v.strip()]
    except ValueError:
        raise PlaitError(f"--levels must be numbers separated by commas, got {levels!r}") from None
    reference = Predictor.load(baseline, on_bad_row) if baseline is not None else None
    report = predictor.robustness(data, levels=noise_levels, seed=seed, baseline=reference)
    save_result(run, "robustness.json", report.to_dict())  # for the run's report.html
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        print_robustness(report, f"{data}", baseline)


@app.command()
@user_errors
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
    on_bad_row: OnBadRowRead = None,
    data_root: DataRoot = None,
) -> None:
    """Which inputs the model relies on: the metric with each one removed, permuted or alone."""
    confine(data_root)
    from plait.predictor import Predictor
    from plait.report import save_result

    predictor = Predictor.load(run, on_bad_row)
    if rows is not None:
        try:
            numbers = [int(v) for v in split_list(rows)]
        except ValueError:
            raise PlaitError(f"--rows must be row numbers separated by commas, got {rows!r}") from None
        result = predictor.explain_rows(data, numbers, output_dir, target, overwrite=overwrite)
        if as_json:
            print(result.to_json(orient="records"))
        else:
            print(result.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return
    importance = predictor.explain(data, bootstrap=bootstrap, seed=seed, target=target, benchmark=benchmark)
    saved = save_result(run, "importance.json", importance.to_dict())
    if as_json:
        print(json.dumps(importance.to_dict()))
        return
    print_importance(importance)
    if saved is not None:
        err.print(f"saved {saved} (and {run / 'report.html'})")


def print_importance(result: Any) -> None:
    metric = result.metric
    for name, frame, key in (("input", result.inputs, "input"), ("modality", result.modalities, "modality")):
        if name == "modality" and frame[key].tolist() == result.inputs["input"].tolist():
            continue  # one input per modality: the same table again
        table = Table(
            title=f"{result.target}: {metric} {result.clean:.4f} on {result.rows} rows; drop per {name}",
            title_justify="left",
        )
        for column in (name, "method", metric, "drop", "95% interval"):
            table.add_column(column, justify="left" if column in (name, "method") else "right")
        for row in frame.to_dict(orient="records"):
            interval = "—" if row["low"] != row["low"] else f"[{row['low']:+.4f}, {row['high']:+.4f}]"
            table.add_row(row[key], row["method"], f"{row['score']:.4f}", f"{row['drop']:+.4f}", interval)
        out.print(table)
    if len(result.per_class):
        removed = result.per_class[result.per_class["method"] == "remove"]
        pivot = removed.pivot(index="class", columns="input", values="drop")
        table = Table(title="recall drop per class with each input removed", title_justify="left")
        table.add_column("class")
        for column in pivot.columns:
            table.add_column(str(column), justify="right")
        for label, row in pivot.iterrows():
            table.add_row(str(label), *(f"{v:+.3f}" for v in row))
        out.print(table)
    for note in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {note}")


@app.command(name="report")
@user_errors
def report_command(run: Annotated[Path, typer.Argument(help="Run folder.")]) -> None:
    """Rebuild RUN/report.html: one self-contained page, viewable offline.

    Data summary, learning curves, evaluation plots, and modality importance and
    robustness when plait explain / plait evaluate --robustness saved them.
    """
    from plait.report import write_report

    print(write_report(run))


def print_robustness(report: Any, title: str, baseline: Path | None) -> None:
    import pandas as pd

    metric = report.metric
    table = Table(title=f"{title}: {metric} with inputs missing", title_justify="left")
    for column, justify in (("condition", "left"), (metric, "right"), ("change", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_row("clean", f"{report.clean:.4f}", "")
    for row in report.missing.to_dict(orient="records"):
        table.add_row(row["condition"], f"{row[metric]:.4f}", f"{row[metric] - report.clean:+.4f}")
    out.print(table)
    table = Table(title=f"{metric} with noisy inputs (level 0 = clean)", title_justify="left")
    table.add_column("input")
    table.add_column("corruption")
    for level in sorted(report.noise["level"].unique()):
        table.add_column(f"{level:g}", justify="right")
    table.add_column("relative", justify="right")
    table.add_column("effective", justify="right")
    summary = report.summary.set_index(["input", "corruption"])
    for (key, name), curve in report.noise.groupby(["input", "corruption"], sort=False):
        relative, effective = summary.loc[(key, name), ["relative", "effective"]]
        cells = [f"{v:.4f}" for v in curve[metric]]
        eff = "—" if pd.isna(effective) else f"{effective:+.4f}"
        table.add_row(key, name, *cells, f"{relative:.4f}", eff)
    out.print(table)
    if baseline is None:
        out.print("effective robustness needs --baseline RUN (MultiBench compares with a late-fusion run)")


@app.command()
@user_errors
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data: Annotated[
        str, typer.Argument(help="Table to predict; or a folder or fsspec URL of Parquet shards (streamed).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV, Parquet or JSONL file to write.")],
    overwrite: OverwriteOutput = False,
    on_bad_row: OnBadRowRead = None,
    data_root: DataRoot = None,
) -> None:
    """Write one prediction per input row (with class probabilities), in the table's order."""
    confine(data_root)
    from plait.outputs import PREDICTION_SUFFIXES, write_predictions
    from plait.predictor import Predictor

    if output.suffix.lower() not in PREDICTION_SUFFIXES:
        raise PlaitError(f"--output must end in .csv, .parquet or .jsonl, got {output.name!r}")
    check_writable(output, overwrite, run, data)
    predictor = Predictor.load(run, on_bad_row)
    # Written piece by piece (a streamed table is never held whole), and atomically:
    # never a half-written prediction file.
    rows = write_predictions(predictor.predict_chunks(data), output)
    print(f"wrote {rows} predictions to {output}", file=sys.stderr)  # one line, however long


@app.command()
@user_errors
def serve(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes, each with its own model.")] = 1,
    threads: Annotated[
        int | None,
        typer.Option(help="Torch threads per worker (default: cores ÷ workers − 1, at least 1)."),
    ] = None,
    max_batch: Annotated[
        int,
        typer.Option(help="Rows per model call when concurrent requests are merged (1: no micro-batching)."),
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a request may wait for others to join its batch.")
    ] = 5.0,
    allow_dir: Annotated[
        Path | None,
        typer.Option(help="Folder that media paths in requests may point into (default: paths refused)."),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option(help="Largest request body (inline base64 files or uploads), in MB.")
    ] = 10.0,
) -> None:
    """Serve predictions over HTTP: POST /predict, GET /schema, GET /health, /docs."""
    try:
        from plait.serve.options import ServeOptions
        from plait.serve.server import serve as run_server
    except ImportError as error:
        needed = ("fastapi", "fastapi_offline", "starlette", "uvicorn", "multipart", "python_multipart")
        if error.name not in needed:
            raise
        raise PlaitError(f"plait serve needs {error.name}: pip install 'plait[serve]'") from None

    options = ServeOptions(max_batch, max_wait_ms, allow_dir, max_upload_mb)
    run_server(run, host, port, workers, options, threads)


@app.command()
@user_errors
def embed(
    run: Annotated[Path, typer.Argument(help="Retrieval run folder.")],
    data: Annotated[Path, typer.Argument(help="Table holding the column to embed.")],
    column: Annotated[str, typer.Option("--column", help="Tower column to embed.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help=".parquet, or .npy (rows in FILE.rows.csv beside it).")
    ],
    overwrite: OverwriteOutput = False,
    data_root: DataRoot = None,
) -> None:
    """Write unit-length embeddings of one column, one per row, with the row ids."""
    confine(data_root)
    from plait.predictor import Predictor
    from plait.retrieval import rows_file

    for path in (output, rows_file(output)) if output.suffix.lower() == ".npy" else (output,):
        check_writable(path, overwrite, run, data)
    embeddings = Predictor.load(run).embed(data, column)
    embeddings.save(output)
    missing = int(np.isnan(embeddings.vectors).any(1).sum())
    note = f" ({missing} empty or unreadable cells left as NaN)" if missing else ""
    print(f"wrote {len(embeddings.vectors)} {column} embeddings to {output}{note}", file=sys.stderr)


@app.command()
@user_errors
def search(
    run: Annotated[Path, typer.Argument(help="Retrieval run folder.")],
    index: Annotated[Path, typer.Option(help="Table to search, or embeddings from plait embed.")],
    query: Annotated[list[str], typer.Option(help="Text, or a path to an image/audio file (repeatable).")],
    top: Annotated[int, typer.Option(help="Hits per query.")] = 10,
    query_column: Annotated[
        str | None, typer.Option(help="Tower of the query (default: by its type).")
    ] = None,
    index_column: Annotated[
        str | None, typer.Option(help="Tower to search (default: the other one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records, nothing else.")] = False,
    data_root: DataRoot = None,
) -> None:
    """The nearest distinct items of an index to each query."""
    confine(data_root)
    from plait.predictor import Predictor

    hits = Predictor.load(run).search(query, index, top, query_column, index_column)
    if as_json:
        print(hits.to_json(orient="records"))
        return
    table = Table(title=f"top {top} in {index}", title_justify="left")
    for name in hits.columns:
        table.add_column(name, justify="right" if name in ("rank", "score", "row") else "left")
    for record in hits.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in record))
    out.print(table)


@app.command(name="zero-shot")
@user_errors
def zero_shot_command(
    run: Annotated[Path, typer.Argument(help="Retrieval run folder.")],
    data: Annotated[Path, typer.Argument(help="Table of items to classify.")],
    column: Annotated[str, typer.Option("--column", help="Tower column holding the items.")],
    labels: Annotated[str, typer.Option(help="Class names, comma-separated.")],
    template: Annotated[
        str, typer.Option(help="Prompt per class; {label} is replaced.")
    ] = "a photo of a {label}",
    truth: Annotated[str | None, typer.Option(help="Column with the true class: print accuracy.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV to write the predictions to.")
    ] = None,
    overwrite: OverwriteOutput = False,
    data_root: DataRoot = None,
) -> None:
    """Classify items with no training, by their similarity to one text prompt per class."""
    confine(data_root)

    from plait.data.table import read_table
    from plait.outputs import write_predictions
    from plait.predictor import Predictor

    if output is not None:
        check_writable(output, overwrite, run, data)
    result = Predictor.load(run).zero_shot(data, column, split_list(labels), template)
    if output is not None:
        write_predictions([result], output)  # atomically
        err.print(f"wrote {len(result)} predictions to {output}")
    if truth is not None:
        frame = read_table(data).frame
        if truth not in frame.columns:
            raise PlaitError(f"--truth column {truth!r} not in {data}; columns: {', '.join(frame.columns)}")
        scored = result["predicted"].notna()
        right = (result["predicted"][scored] == frame[truth].astype(str).str.strip()[scored]).mean()
        print_metrics(
            {"accuracy": float(right), "rows": float(scored.sum())}, f"zero-shot {column} in {data}"
        )
    elif output is None:
        out.print(result.head(20).to_string(index=False))


@app.command(name="export")
@user_errors
def export_command(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.onnx, .pt, .pt2).")],
    format: Annotated[
        str, typer.Option("--format", help="onnx, torchscript or pt2 (torch.export).")
    ] = "onnx",
    overwrite: OverwriteOutput = False,
) -> None:
    """Write the model, with its preprocessing inside, as one portable file (see plait.runtime)."""
    from plait.export import export_run

    check_writable(output, overwrite, run)
    path = export_run(run, format, output)
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB); "
        f"run it with: python -m plait.runtime {path} DATA --output OUT"
    )


cache_app = typer.Typer(no_args_is_help=True, help="The decode cache ($PLAIT_CACHE_DIR/decoded).")
app.add_typer(cache_app, name="cache")


@cache_app.command(name="clear")
@user_errors
def cache_clear() -> None:
    """Delete every decoded column (always safe: they are decoded again when needed)."""
    from plait.data import decode_cache

    files, size = decode_cache.clear()
    out.print(f"removed {files} file(s), {size / 2**20:.1f} MiB, from {decode_cache.cache_dir()}")


def main() -> None:
    global STARTED
    STARTED = time.monotonic()
    app()


if __name__ == "__main__":
    main()

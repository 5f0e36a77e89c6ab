"""Commands that put a run to use: predict, serve, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.options import OnBadRowRead, OverwriteOutput, Run, check_writable
from plait.errors import PlaitError


def predict(
    run: Run,
    data: Annotated[
        str, typer.Argument(help="Table to predict; or a folder or fsspec URL of Parquet shards (streamed).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV, Parquet or JSONL file to write.")],
    overwrite: OverwriteOutput = False,
    on_bad_row: OnBadRowRead = None,
) -> None:
    """Write one prediction per input row (with class probabilities), in the table's order."""
    from plait.outputs import check_prediction_path, write_predictions
    from plait.predictor import Predictor

    check_writable(check_prediction_path(output), overwrite, run, data)
    predictor = Predictor.load(run, on_bad_row)
    # Written piece by piece (a streamed table is never held whole), and atomically:
    # never a half-written prediction file.
    rows = write_predictions(predictor.predict_chunks(data), output)
    print(f"wrote {rows} predictions to {output}", file=sys.stderr)  # one line, however long


def serve(
    run: Run,
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


def export(
    run: Run,
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

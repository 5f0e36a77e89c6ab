"""Commands for a retrieval run (a contrastive head over two or more towers): embed,
search, zero-shot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli import render
from plait.cli.options import OverwriteOutput, RetrievalRun, check_writable, split_list


def embed(
    run: RetrievalRun,
    data: Annotated[Path, typer.Argument(help="Table holding the column to embed.")],
    column: Annotated[str, typer.Option("--column", help="Tower column to embed.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help=".parquet, or .npy (rows in FILE.rows.csv beside it).")
    ],
    overwrite: OverwriteOutput = False,
) -> None:
    """Write unit-length embeddings of one column, one per row, with the row ids."""
    from plait.predictor import Predictor
    from plait.retrieval import embedding_files

    for path in embedding_files(output):
        check_writable(path, overwrite, run, data)
    embeddings = Predictor.load(run).embed(data, column)
    embeddings.save(output)
    missing = embeddings.missing()
    note = f" ({missing} empty or unreadable cells left as NaN)" if missing else ""
    print(f"wrote {len(embeddings.vectors)} {column} embeddings to {output}{note}", file=sys.stderr)


def search(
    run: RetrievalRun,
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
) -> None:
    """The nearest distinct items of an index to each query."""
    from plait.predictor import Predictor

    hits = Predictor.load(run).search(query, index, top, query_column, index_column)
    if as_json:
        print(hits.to_json(orient="records"))
    else:
        render.hits(hits, f"top {top} in {index}")


def zero_shot(
    run: RetrievalRun,
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
) -> None:
    """Classify items with no training, by their similarity to one text prompt per class."""
    from plait.outputs import write_predictions
    from plait.predictor import Predictor
    from plait.retrieval import zero_shot_accuracy

    if output is not None:
        check_writable(output, overwrite, run, data)
    result = Predictor.load(run).zero_shot(data, column, split_list(labels), template)
    if output is not None:
        write_predictions([result], output)  # atomically
        render.err.print(f"wrote {len(result)} predictions to {output}")
    if truth is not None:
        render.metrics(zero_shot_accuracy(result, data, truth), f"zero-shot {column} in {data}")
    elif output is None:
        render.out.print(result.head(20).to_string(index=False))

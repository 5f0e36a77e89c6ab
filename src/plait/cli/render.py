"""What the commands print: rich tables on stdout, notes on stderr. Results arrive
computed; nothing here reads a file or runs a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


def metrics(values: dict[str, float], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in values.items():
        table.add_row(name, f"{value:.4f}")
    out.print(table)


def run_metrics(run_dir: Path, splits: dict[str, str]) -> None:
    """The metrics a run folder saved for each split present (split → table title),
    then where the run is."""
    saved = json.loads((run_dir / "metrics.json").read_text())
    for split, title in splits.items():
        if split in saved:
            metrics(saved[split], title)
    out.print(f"run folder: {run_dir}", soft_wrap=True)  # one line, however long the path


def cv_summary(summary: dict[str, Any], folds: int) -> None:
    table = Table(title=f"{folds}-fold cross-validation (test folds)", title_justify="left")
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for name, mean in summary["mean"].items():
        table.add_row(name, f"{mean:.4f} ± {summary['std'][name]:.4f}")
    out.print(table)


def frame_text(frame: Any, spec: str) -> None:
    """A DataFrame as plain text, floats formatted with `spec` (".4f"), not a rich table:
    its columns may be many and must not be truncated."""
    print(frame.to_string(index=False, float_format=lambda v: f"{v:{spec}}"))


def importance(result: Any) -> None:
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


def robustness(report: Any, title: str, baseline: Path | None) -> None:
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


def hits(found: Any, title: str) -> None:
    """Search hits, one row each."""
    table = Table(title=title, title_justify="left")
    for name in found.columns:
        table.add_column(name, justify="right" if name in ("rank", "score", "row") else "left")
    for record in found.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in record))
    out.print(table)

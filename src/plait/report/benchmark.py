"""OUT/report.html of `plait benchmark`: the summary table, its plot and links to each
run's own report (relative links, so the folder can be moved or archived whole)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from plait.report.html import image, note, page, table, text, write_page

log = logging.getLogger(__name__)


def write_benchmark_report(folder: str | Path, shown_as: str | Path | None = None) -> Path:
    """Write FOLDER/report.html from summary.csv, benchmark.csv and benchmark.png;
    `shown_as`: the folder's name in the page (the benchmark writes into a staging folder)."""
    folder = Path(folder)
    shown = Path(shown_as) if shown_as is not None else folder
    summary = pd.read_csv(folder / "summary.csv")
    body = table(summary.to_dict(orient="records"))
    plot = folder / "benchmark.png"
    if plot.is_file():
        body += image(plot.read_bytes(), "benchmark plot")
    parts = [("summary", "Methods (mean over seeds)", body)]
    runs_csv = folder / "benchmark.csv"
    if runs_csv.is_file():
        runs = pd.read_csv(runs_csv)
        parts.append(("runs", "Every run", table(runs.to_dict(orient="records"))))
    links = sorted(p.parent for p in (folder / "runs").glob("*/report.html"))
    if links:
        items = "".join(
            f'<li><a href="runs/{text(p.name)}/report.html">{text(p.name)}</a></li>' for p in links
        )
        parts.append(("reports", "Run reports", f"<ul>{items}</ul>"))
    else:
        parts.append(("reports", "Run reports", note("No run reports under runs/.")))
    held = ", ".join(sorted(set(pd.read_csv(runs_csv)["held_out"]))) if runs_csv.is_file() else "held-out"
    subtitle = (
        f"Every method trained with the same encoders, data and budget; metrics on the {text(held)} "
        f"rows · {text(shown)}"
    )
    path = folder / "report.html"
    write_page(path, page(f"Plait fusion benchmark: {shown.resolve().name}", subtitle, parts))
    return path


def save_benchmark_report(folder: Path, shown_as: str | Path | None = None) -> Path | None:
    """write_benchmark_report for `plait benchmark`: a failure is logged and never costs
    the benchmark's runs and tables."""
    try:
        return write_benchmark_report(folder, shown_as)
    except Exception as error:  # the trained runs matter more than their page
        log.warning("could not write the benchmark's report.html (%s: %s)", type(error).__name__, error)
        return None

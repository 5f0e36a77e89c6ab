"""report.html: one self-contained page per run (and per `plait benchmark` folder).

Built from the run folder's files only (config.yaml, metrics.json, log.csv, summary.json,
and importance.json / robustness.json when `plait explain` / `plait evaluate
--robustness` saved them), so `plait report RUN` rebuilds it anywhere, without the data.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from plait.atomic import atomic_write_text
from plait.errors import RunFolderError
from plait.report.benchmark import save_benchmark_report, write_benchmark_report
from plait.report.html import note, page, text, write_page

if TYPE_CHECKING:
    import pandas as pd

    from plait.config import ResolvedConfig
    from plait.data.dataset import TableDataset
    from plait.inference import Run

__all__ = [
    "REPORT_NAME",
    "save_benchmark_report",
    "save_training_report",
    "write_benchmark_report",
    "write_report",
]

REPORT_NAME = "report.html"
log = logging.getLogger(__name__)


def write_report(run_dir: str | Path, shown_as: str | Path | None = None) -> Path:
    """(Re)build RUN/report.html from the run folder's files; returns its path.
    `shown_as`: the folder's name in the page (training writes into a staging folder)."""
    folder = Path(run_dir)
    shown = Path(shown_as) if shown_as is not None else folder
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, not a run folder (give the folder plait train wrote)")
    if not folder.is_dir():
        raise RunFolderError(f"run folder not found: {folder}")
    for name in ("plait.json", "config.yaml"):
        if not (folder / name).is_file():
            raise RunFolderError(
                f"{folder} is not a run folder: it has no {name} (expected a folder written by plait train)"
            )
    from plait.report import sections  # matplotlib loads only when a report is drawn
    from plait.runfolder import check_links

    check_links(folder)  # no file of the report is read through a link out of the folder
    try:
        metrics = sections.read_json(folder / "metrics.json") or {}
    except ValueError as error:  # also UnicodeDecodeError
        raise RunFolderError(f"{folder / 'metrics.json'} is damaged: not valid JSON ({error})") from None
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (ValueError, yaml.YAMLError) as error:
        detail = " ".join(str(error).split())[:200]
        raise RunFolderError(f"{folder / 'config.yaml'} is damaged: not valid YAML ({detail})") from None
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        name = "metrics.json" if not isinstance(metrics, dict) else "config.yaml"
        raise RunFolderError(f"{folder / name} is damaged: expected a mapping at the top level")
    summary = functools.partial(sections.read_json, folder / "summary.json")  # read in each section
    parts: list[tuple[str, str, Callable[[], str]]] = [
        ("overview", "Overview", lambda: sections.overview(folder, metrics, config)),
        ("data", "Data", lambda: sections.data(summary())),
        ("training", "Learning curves", lambda: sections.training(folder, metrics)),
        ("evaluation", "Evaluation", lambda: sections.evaluation(summary(), metrics)),
        ("leaderboard", "Candidates", lambda: sections.leaderboard(metrics)),
        (
            "importance",
            "Modality importance",
            lambda: sections.importance(_optional(folder, "importance.json")),
        ),
        ("robustness", "Robustness", lambda: sections.robustness(_optional(folder, "robustness.json"))),
        ("config", "Config", lambda: sections.config(folder)),
    ]
    if (folder / "trials.csv").is_file():  # the best run of a `plait tune` search
        parts.insert(5, ("search", "Hyperparameter search", lambda: sections.search(folder)))
    built = [(anchor, title, _guarded(title, build)) for anchor, title, build in parts]
    alerts = _guarded("warnings", lambda: _alerts(folder))
    targets = ", ".join(f"{o['name']} ({o.get('type')})" for o in config.get("outputs", []))
    trained = None
    with contextlib.suppress(ValueError, AttributeError):  # a damaged summary: its sections say so
        trained = (summary() or {}).get("trained")
    subtitle = (
        f"Targets {text(targets)} · " + (f"trained {text(trained)} · " if trained else "") + text(shown)
    )
    path = folder / REPORT_NAME
    write_page(path, page(f"Plait run report: {shown.resolve().name}", subtitle, built, alerts))
    return path


def save_training_report(
    folder: Path,
    cfg: ResolvedConfig,
    frame: pd.DataFrame,
    datasets: dict[str, TableDataset],
    run: Run,
    shown_as: str | Path | None = None,
) -> Path | None:
    """At the end of training: summary.json, then report.html. A failure here is logged
    and never costs the trained run (the report can be rebuilt with `plait report RUN`)."""
    from plait.report.summary import write_summary  # needs torch; `plait report` does not

    try:
        write_summary(folder, cfg, frame, datasets, run)
    except Exception as error:  # the run matters more than its summary
        log.warning("could not summarise the run for its report (%s: %s)", type(error).__name__, error)
    try:
        return write_report(folder, shown_as)
    except Exception as error:
        log.warning("could not write report.html (%s: %s); try plait report RUN", type(error).__name__, error)
        return None


def _optional(folder: Path, name: str) -> dict[str, Any] | None:
    from plait.report.sections import read_json

    data = read_json(folder / name)
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{name} holds a {type(data).__name__}, expected a JSON object")
    return data


def _alerts(folder: Path) -> str:
    """Warnings worth reading before anything else: `plait explain`'s shortcut warnings."""
    found = (_optional(folder, "importance.json") or {}).get("warnings") or []
    return "".join(
        note(f'⚠ {text(w)} (<a href="#importance">modality importance</a>)', "warn") for w in found
    )


def _guarded(title: str, build: Callable[[], str]) -> str:
    """A section's HTML, or a note saying why it could not be drawn."""
    try:
        return build()
    except Exception as error:  # one bad file must not sink the whole page
        log.warning("report section %r failed (%s: %s)", title, type(error).__name__, error)
        return note(f"This section could not be drawn: {text(type(error).__name__)}: {text(error)}", "error")


def save_result(folder: Path, name: str, payload: dict[str, Any]) -> Path | None:
    """Add an analysis (importance.json, robustness.json) to a finished run folder,
    atomically, and rebuild its report. A read-only folder keeps its old state: the
    caller already has the result, so that is a warning, not an error."""
    path = Path(folder) / name
    try:
        atomic_write_text(path, json.dumps(_plain(payload), indent=1))
        write_report(Path(folder))
    except OSError as err:
        warnings.warn(f"could not save {name} in {folder}: {err}", stacklevel=2)
        return None
    return path


def _plain(value: Any) -> Any:
    """JSON-ready: NaN → null (strict JSON has no NaN), numpy scalars → Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value

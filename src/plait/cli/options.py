"""Options shared by several commands, and the parsers that turn option text into API
arguments (one place for each message a user sees about a malformed value)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plait.errors import PlaitError

if TYPE_CHECKING:
    from plait.config import PlaitConfig

Data = Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL table.")]
Run = Annotated[Path, typer.Argument(help="Run folder.")]
RetrievalRun = Annotated[Path, typer.Argument(help="Retrieval run folder.")]
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
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")]
Preset = Annotated[
    str | None,
    typer.Option(
        help="fast (networks from scratch), medium (default: shipped pretrained image and text "
        "encoders, frozen and cached) or best (medium, trained longer, with LightGBM and a linear "
        "probe weighted in). The config's own choices win."
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
Candidates = Annotated[
    str | None,
    typer.Option(
        help="Learners to train and weight into one ensemble, comma-separated: neural, lightgbm, "
        "linear (default: all three with --preset best, and with medium on a table with numeric or "
        "category columns; else neural). See plait leaderboard RUN."
    ),
]
Metric = Annotated[
    str | None,
    typer.Option(
        help="What binary targets are decided for: accuracy (default), macro_f1, f1 or "
        "balanced_accuracy. The decision threshold is tuned on held-out predictions to maximise it."
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


def split_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def row_numbers(text: str) -> list[int]:
    """--rows 3,7 → [3, 7] (1-based, as the user counts)."""
    try:
        return [int(v) for v in split_list(text)]
    except ValueError:
        raise PlaitError(f"--rows must be row numbers separated by commas, got {text!r}") from None


def noise_levels(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PlaitError(f"--levels must be numbers separated by commas, got {text!r}") from None


def machine_settings(
    accelerator: str | None,
    devices: str | None,
    num_nodes: int | None,
    strategy: str | None,
    precision: str | None,
) -> dict[str, Any]:
    """train's hardware flags as config settings (apply_overrides; None keeps the config's)."""
    return {
        "accelerator": accelerator,
        # A count; 'auto' or GPU ids ('0,1') stay text for the config.
        "devices": int(devices) if devices is not None and devices.isdigit() else devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        "precision": precision,
    }


def speed_settings(
    channels_last: bool, compiled: bool, checkpoint_every: int | None, no_cache: bool
) -> dict[str, Any]:
    """train's speed flags as config settings (apply_overrides; None keeps the config's)."""
    return {
        "channels_last": channels_last or None,  # a flag only switches on; the config may too
        "compile": compiled or None,
        "checkpoint_every_n_steps": checkpoint_every,
        "cache": False if no_cache else None,  # a flag only switches off; the config may too
    }


def user_config(
    path: Path | None,
    on_bad_row: str | None,
    fusion: str | None = None,
    preset: str | None = None,
    time_limit: str | None = None,
    candidates: str | None = None,
    metric: str | None = None,
) -> PlaitConfig:
    """The --config file (or defaults), with --on-bad-row, --fusion, --preset,
    --time-limit, --candidates and --metric applied and validated as in a config file."""
    from plait.config import apply_overrides, as_config

    return apply_overrides(
        as_config(path),
        fusion=fusion,
        time_limit=time_limit,
        on_bad_row=on_bad_row,
        preset=preset,
        candidates=None if candidates is None else split_list(candidates),
        metric=metric,
    )


def check_writable(output: Path, overwrite: bool, run: Path | None, data: Any = None) -> None:
    """Before any work: --output is neither an input (the table, a file of the run
    folder) nor an existing file without --overwrite (plait.output_paths)."""
    from plait.output_paths import check_output_file, table_inputs

    inputs = table_inputs(data)
    if run is not None:
        inputs.add_folder(run, f"a file of the run folder {run}")
    check_output_file(output, overwrite, inputs)

"""The run folder: everything needed to predict, nothing that executes on load.

config.yaml        resolved config (types, encoders, trainer settings)
processors.json    fitted processors (parameters + fitted state, plain JSON)
model.safetensors  weights
metrics.json       validation / test metrics and training summary
log.csv            per-epoch training log
plait.json         format version and package versions
summary.json       data summary and held-out evaluation details, for the report
report.html        the visual report (plait.report; rebuilt by `plait report RUN`)

It is written into a hidden temporary sibling folder and renamed into place only
when complete, so a crash never leaves a half-written run behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from plait.atomic import atomic_write_text
from plait.config import PlaitConfig, parse_config
from plait.data.processors import (
    INPUT_PROCESSORS,
    TARGET_PROCESSORS,
    InputProcessor,
    TargetProcessor,
)
from plait.errors import ConfigError, PlaitError, RunFolderError

FORMAT_VERSION = 1
REQUIRED = ("config.yaml", "processors.json", "model.safetensors", "plait.json")


@contextlib.contextmanager
def staging(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `final`; rename it to `final` on success,
    delete it on any error. An existing `final` is replaced only with `overwrite`,
    and only once the new folder is complete."""
    final = Path(final)
    if final.exists() and not overwrite:
        raise PlaitError(f"output folder {final} already exists; choose another --out or pass --overwrite")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; a run folder is an ordinary folder
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_result(folder: Path, name: str, payload: dict[str, Any]) -> Path | None:
    """Add an analysis (importance.json, robustness.json) to a finished run folder,
    atomically, and rebuild its report. A read-only folder keeps its old state: the
    caller already has the result, so that is a warning, not an error."""
    import warnings

    from plait.report import write_report

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


def versions() -> dict[str, str]:
    packages = ("plait", "torch", "lightning", "torchvision", "tokenizers", "pandas")
    found = {}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return {"python": platform.python_version(), **found}


def write_run(
    folder: Path,
    config: PlaitConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    metrics: dict[str, Any],
) -> None:
    (folder / "config.yaml").write_text(config.to_yaml())
    state = {
        "inputs": {name: p.state() for name, p in processors.items()},
        "targets": {name: p.state() for name, p in targets.items()},
    }
    (folder / "processors.json").write_text(json.dumps(state, indent=1))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "plait.json").write_text(
        json.dumps({"format_version": FORMAT_VERSION, "versions": versions()}, indent=2)
    )


def read_run(folder: Path) -> tuple[PlaitConfig, dict[str, InputProcessor], dict[str, TargetProcessor]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"run folder not found: {folder}")
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise RunFolderError(f"run folder {folder} is missing {name}; was it copied completely?")
    info = _read_json(folder / "plait.json")
    if info.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(
            f"{folder / 'plait.json'}: run format {info.get('format_version')!r} is not supported "
            f"(this Plait reads format {FORMAT_VERSION})"
        )
    try:
        config = parse_config(yaml.safe_load((folder / "config.yaml").read_text()), "config.yaml")
    except (yaml.YAMLError, ConfigError) as err:
        raise RunFolderError(f"{folder / 'config.yaml'} is damaged: {err}") from None
    state = _read_json(folder / "processors.json")
    try:
        inputs = {n: INPUT_PROCESSORS[s["kind"]].from_state(s) for n, s in state["inputs"].items()}
        targets = {n: TARGET_PROCESSORS[s["kind"]].from_state(s) for n, s in state["targets"].items()}
    except (KeyError, TypeError, AttributeError) as err:
        raise RunFolderError(f"{folder / 'processors.json'} is damaged: {err!r}") from None
    return config, inputs, targets


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is damaged: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is damaged: expected a JSON object")
    return data

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
import hashlib
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

from plait.config import PlaitConfig, ResolvedConfig, input_units, parse_config
from plait.data.processors import (
    INPUT_PROCESSORS,
    TARGET_PROCESSORS,
    InputProcessor,
    TargetProcessor,
)
from plait.data.schema import resolved
from plait.errors import ConfigError, PlaitError, RunFolderError
from plait.output_paths import Inputs, check_output_folder, is_plait_output, real

FORMAT_VERSION = 1
REQUIRED = ("config.yaml", "processors.json", "model.safetensors", "plait.json")
CHECKED = ("config.yaml", "processors.json", "model.safetensors")  # sha256 in plait.json


@contextlib.contextmanager
def staging(final: Path, overwrite: bool = False, inputs: Inputs | None = None) -> Iterator[Path]:
    """Yield a temporary folder next to `final`; rename it to `final` on success,
    delete it on any error. An existing `final` is replaced only with `overwrite`, only
    if Plait wrote it (plait.output_paths), and only once the new folder is complete;
    a `final` holding one of `inputs` never."""
    check_output_folder(final, overwrite, inputs)
    final = real(final)  # `--out .` or `runs/x/..` has no name to stage beside
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; a run folder is an ordinary folder
        if final.exists():
            if not is_plait_output(final):  # replaced by something else while we worked
                raise PlaitError(f"{final} exists and is not a Plait run; choose another --out")
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PACKAGES = (
    "plait",
    "torch",
    "lightning",
    "torchvision",
    "torchmetrics",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "soundfile",
    "soxr",
    "librosa",
    "tokenizers",
    "safetensors",
    "pydantic",
    "pyyaml",
    "transformers",
    "timm",
)


def versions() -> dict[str, str]:
    """Python and the installed version of each package a run's numbers depend on."""
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return {"python": platform.python_version(), **found}


def machine() -> dict[str, Any]:
    """Where the run was trained: results on another platform or CPU may differ in
    the last digits (float reductions), with the same seed and data."""
    import torch

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }


def write_run(
    folder: Path,
    config: PlaitConfig,
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    metrics: dict[str, Any],
    data_hash: dict[str, Any] | None = None,
) -> None:
    """Write the run's files into `folder`; `data_hash` is the training table's
    fingerprint (plait.data.fingerprint), recorded in plait.json."""
    (folder / "config.yaml").write_text(config.to_yaml())
    state = {
        "inputs": {name: p.state() for name, p in processors.items()},
        "targets": {name: p.state() for name, p in targets.items()},
    }
    (folder / "processors.json").write_text(json.dumps(state, indent=1))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    info: dict[str, Any] = {"format_version": FORMAT_VERSION, "versions": versions(), "machine": machine()}
    if data_hash is not None:
        info["data"] = data_hash
    # Checked on load, so a truncated or overwritten file is named as such; an ensemble's
    # files (plait.ensemble: ensemble.json, members/) too.
    members = sorted(p.relative_to(folder).as_posix() for p in (folder / "members").glob("*") if p.is_file())
    names = [*CHECKED, "ensemble.json", *members]
    info["sha256"] = {name: _sha256(folder / name) for name in names if (folder / name).is_file()}
    (folder / "plait.json").write_text(json.dumps(info, indent=2))


def read_run(folder: Path) -> tuple[ResolvedConfig, dict[str, InputProcessor], dict[str, TargetProcessor]]:
    """The config and fitted processors of a run folder. Every failure is a
    RunFolderError naming the file and what is wrong with it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, not a run folder (give the folder plait train wrote)")
    if not folder.is_dir():
        raise RunFolderError(f"run folder not found: {folder}")
    check_links(folder)
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise RunFolderError(f"run folder {folder} is missing {name}; was it copied completely?")
    info = _read_json(folder / "plait.json")
    if info.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(
            f"{folder / 'plait.json'}: run format {info.get('format_version')!r} is not supported "
            f"(this Plait reads format {FORMAT_VERSION})"
        )
    path = folder / "config.yaml"
    try:
        data = yaml.safe_load(_read_text(path))
        if not isinstance(data, dict):
            what = "it is empty" if data is None else f"expected a mapping, got a {type(data).__name__}"
            raise RunFolderError(f"{path} is damaged: {what}")
        # Runs written before config.yaml named every encoder and head get what they
        # built then (schema.resolved fills the gaps with DEFAULT_ENCODERS).
        config = resolved(parse_config(data, "config.yaml"))
    except (yaml.YAMLError, ConfigError) as err:
        raise RunFolderError(f"{path} is damaged: {' '.join(str(err).split())[:300]}") from None
    lost = [key for key in PlaitConfig.model_fields if key not in data]
    if lost and _changed(folder, "config.yaml"):  # an edited config may change values, not lose keys
        raise RunFolderError(
            f"{path} is damaged: it lacks {', '.join(lost)} and differs from the file written at "
            "training (checksum in plait.json); truncated?"
        )
    inputs, targets = _read_processors(folder / "processors.json", config)
    verify_checksum(folder, "processors.json")
    return config, inputs, targets


def verify_checksum(folder: Path, name: str) -> None:
    """A file that parsed but is not the one written at training (its sha256 in
    plait.json; runs written before checksums pass) is damaged or replaced."""
    if _changed(folder, name):
        raise RunFolderError(
            f"{folder / name} is damaged: its content differs from the checksum recorded in "
            "plait.json at training (truncated, or replaced by another file?)"
        )


def _changed(folder: Path, name: str) -> bool:
    recorded = _read_json(folder / "plait.json").get("sha256")
    if not isinstance(recorded, dict) or name not in recorded:
        return False
    return _sha256(folder / name) != recorded[name]


def _read_processors(
    path: Path, config: ResolvedConfig
) -> tuple[dict[str, InputProcessor], dict[str, TargetProcessor]]:
    """processors.json: one fitted processor per model input and per output of `config`."""
    state = _read_json(path)
    loaded: dict[str, dict[str, Any]] = {"inputs": {}, "targets": {}}
    expected = {"inputs": list(input_units(config)), "targets": [o.name for o in config.outputs]}
    for part, registry in (("inputs", INPUT_PROCESSORS), ("targets", TARGET_PROCESSORS)):
        entries = state.get(part)
        if not isinstance(entries, dict):
            raise RunFolderError(f"{path} is damaged: {part!r} should be an object of fitted processors")
        for name, entry in entries.items():
            where = f"{path} is damaged: {part[:-1]} {name!r}"
            if not isinstance(entry, dict) or not {"kind", "params", "fitted"} <= set(entry):
                raise RunFolderError(f"{where} needs 'kind', 'params' and 'fitted'")
            kind = entry["kind"]
            if not isinstance(kind, str) or kind not in registry:
                raise RunFolderError(
                    f"{where} has unknown kind {kind!r}; known: {', '.join(sorted(registry))}"
                )
            if not isinstance(entry["params"], dict) or not isinstance(entry["fitted"], dict):
                raise RunFolderError(f"{where}: 'params' and 'fitted' should be objects")
            if not entry["fitted"]:
                raise RunFolderError(f"{where} holds no fitted state")
            try:
                loaded[part][name] = registry[kind].from_state(entry)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                detail = " ".join(str(err).split())[:200] or type(err).__name__
                raise RunFolderError(f"{where}: {detail}") from None
        if sorted(entries) != sorted(expected[part]):
            raise RunFolderError(
                f"{path} does not match config.yaml: it has {part} {sorted(entries)}, "
                f"the config {sorted(expected[part])}"
            )
    return loaded["inputs"], loaded["targets"]


def check_links(folder: Path) -> None:
    """Refuse a run folder holding a link (or a name) that resolves outside it: a run
    folder from elsewhere must not make Plait read /etc/passwd or someone's keys."""
    root = folder.resolve()
    for entry in folder.iterdir():
        try:
            target = entry.resolve(strict=False)
        except (OSError, RuntimeError) as err:  # a symlink loop
            raise RunFolderError(f"{entry} cannot be resolved ({type(err).__name__})") from None
        if not target.is_relative_to(root):
            raise RunFolderError(
                f"{entry} is a link to {target}, outside the run folder: paths inside a run "
                "folder cannot escape it"
            )


def check_weights(path: Path, model: Any) -> None:
    """Compare the tensors in model.safetensors (header only) with the model built from
    config.yaml: a missing, unexpected or differently shaped tensor, named."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        raise RunFolderError(f"{path} is damaged: not a readable safetensors file ({detail})") from None
    wanted = model.state_dict()
    storage = {key: t.untyped_storage().data_ptr() for key, t in wanted.items()}
    saved = {storage[key] for key in shapes if key in storage}
    # Tied tensors are saved once (safetensors dedupes shared storage), so a key is only
    # missing if no tensor sharing its storage was saved.
    missing = [k for k in wanted if k not in shapes and storage[k] not in saved]
    unexpected = [k for k in shapes if k not in wanted]
    mismatched = [
        f"{k} has shape {shapes[k]} in the file, {tuple(wanted[k].shape)} in the model"
        for k in shapes
        if k in wanted and shapes[k] != tuple(wanted[k].shape)
    ]
    problems = [
        *(f"missing tensor {k}" for k in missing[:3]),
        *(f"unexpected tensor {k}" for k in unexpected[:3]),
        *mismatched[:3],
    ]
    if problems:
        more = len(missing) + len(unexpected) + len(mismatched) - len(problems)
        tail = f" (and {more} more)" if more > 0 else ""
        raise RunFolderError(
            f"{path} does not match config.yaml (the model it builds): {'; '.join(problems)}{tail}; "
            "were the weights copied from another run?"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
    except OSError as err:
        raise RunFolderError(f"cannot read {path}: {err.strerror or type(err).__name__}") from None
    return digest.hexdigest()


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is damaged: not UTF-8 text") from None
    except OSError as err:
        raise RunFolderError(f"cannot read {path}: {err.strerror or type(err).__name__}") from None


def _read_json(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    if not text.strip():
        raise RunFolderError(f"{path} is damaged: it is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{path} is damaged: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is damaged: expected a JSON object")
    return data

"""Loading torch checkpoints without executing anything in them.

A `.ckpt` / `.pt` file is a pickle. Unpickling an arbitrary file can run any code
(`__reduce__`), so every checkpoint Plait reads goes through `load_checkpoint`: torch's
weights-only unpickler, which accepts tensors, containers and plain numbers and
refuses everything else before it is built. Run folders hold no pickle at all (JSON,
YAML read with `safe_load`, safetensors).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from pickle import UnpicklingError  # the exception class only: nothing is unpickled here
from typing import Any

import torch

from plait.errors import RunFolderError


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict saved in a torch checkpoint, tensors on the CPU; a `RunFolderError`
    naming the file if it is missing, damaged or holds anything but tensors and plain
    values (that content is refused, never executed)."""
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": noise, the load is checked
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except UnpicklingError as err:
        found = _detail(err)
        raise RunFolderError(
            f"{path} holds objects other than tensors and was refused (nothing in it was executed): {found}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError) as err:
        what = " ".join(str(err).split())[:160] or type(err).__name__
        raise RunFolderError(f"{path} is damaged or not a torch checkpoint: {what}") from None
    if not isinstance(state, dict):
        raise RunFolderError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict")
    return state


def _detail(err: Exception) -> str:
    """The line of torch's message naming what was refused ("... GLOBAL posix.system ...")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "unsupported" in line.lower() or "global" in line.lower()]
    return (named or lines or [type(err).__name__])[0][:200]

"""Plait: multimodal learning on tables of images, text, numbers and categories.

import plait
predictor = plait.fit("data.csv", label="answer")
predictor.predict("new.csv")
plait.load("runs/answer-…").evaluate("test.csv")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import ConfigError, DataError, PlaitError, RunFolderError

if TYPE_CHECKING:
    from plait.predictor import Predictor
    from plait.train import fit

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`plait.fit` and `plait.Predictor` import training code on first use, so light
    modules (`plait.runtime`, `plait.cli --help`) do not pay for Lightning."""
    if name == "fit":
        from plait.train import fit

        return fit
    if name == "Predictor":
        from plait.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'plait' has no attribute {name!r}")


def load(run_dir: str | Path, on_bad_row: str | None = None) -> Predictor:
    """Load a run folder written by `fit` or `plait train`; `on_bad_row` (error, missing,
    skip) replaces the run's setting for the tables it reads."""
    from plait.predictor import Predictor

    return Predictor.load(run_dir, on_bad_row)


def leaderboard(run_dir: str | Path) -> Any:
    """A DataFrame of the candidates a run weighed (--preset best, --candidates): each
    one's validation score, fit and prediction time and weight, then the ensemble."""
    from plait.ensemble import read_leaderboard

    return read_leaderboard(run_dir)


def list_encoders(type_: str | None = None) -> list[str]:
    from plait.encoders import ENCODERS

    return ENCODERS.names(type_)


def list_fusions() -> list[str]:
    from plait.fusion import FUSIONS

    return FUSIONS.names()


def list_heads(type_: str | None = None) -> list[str]:
    from plait.heads import HEADS

    return HEADS.names(type_)


__all__ = [
    "ConfigError",
    "DataError",
    "PlaitError",
    "Predictor",
    "RunFolderError",
    "fit",
    "leaderboard",
    "list_encoders",
    "list_fusions",
    "list_heads",
    "load",
]

"""Second networks in the ensemble: the run's own network built with another fusion.

No single fusion wins on every table (docs/benchmarks.md: concat on some, attention on
others), so `--candidates neural_attention` (and preset best) trains the run's network
again with the attention fusion and lets the selection weight the two. Such a member
reads the batch itself (every input, through its own encoders), not the flat table of
features.py, and is saved as safetensors beside the run's model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

# Candidate → the fusion its network trains with.
SECOND_FUSIONS = {"neural_attention": "attention"}


@dataclass
class NetworkCandidate:
    """A second network as training leaves it: its validation predictions and, when the
    run's network has them too, its out-of-fold predictions of the training rows."""

    fusion: dict[str, Any]  # the fusion's ComponentSpec, as config.yaml writes one
    model: nn.Module
    val: dict[str, np.ndarray]  # target → predictions of the validation rows, in their order
    oof: dict[str, np.ndarray] | None  # target → out-of-fold predictions of the training rows
    fit_seconds: float


@dataclass
class NetworkMember:
    """A second network in a run's ensemble: `model.predict(inputs, present)` gives its
    activated outputs per target, as the run's network does."""

    fusion: dict[str, Any]
    model: nn.Module

    def predict(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.model.predict(inputs, present)  # type: ignore[operator]

    def save(self, path: Path) -> None:
        save_model(self.model, str(path))

    @classmethod
    def load(
        cls, fusion: dict[str, Any], path: Path, build: Callable[[dict[str, Any]], nn.Module]
    ) -> NetworkMember:
        """`build(fusion)` gives the run's network with that fusion, untrained."""
        model = build(fusion)
        try:
            load_model(model, str(path))  # strict: a file of another model is an error
        except (RuntimeError, SafetensorError) as err:
            raise ValueError(f"{path.name}: {str(err).splitlines()[0]}") from None
        return cls(fusion, model.eval())

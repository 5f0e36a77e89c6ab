"""Fusion methods; importing this package registers them all in `FUSIONS`."""

from plait.fusion import attention, concat, cross_attention, film, gated, late, tensor  # noqa: F401  (registration)
from plait.fusion.base import FUSIONS, FusedOutput, Fusion

__all__ = ["FUSIONS", "FusedOutput", "Fusion"]

"""Fusion methods; importing this package registers them all in `FUSIONS`."""

from plait.fusion import concat  # noqa: F401  (registration)
from plait.fusion.base import FUSIONS, FusedOutput, Fusion

__all__ = ["FUSIONS", "FusedOutput", "Fusion"]

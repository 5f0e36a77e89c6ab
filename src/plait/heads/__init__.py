"""Task heads; importing this package registers them all in `HEADS`."""

from plait.heads import classification, contrastive, decoder, multilabel, regression  # noqa: F401  (registration)
from plait.heads.base import HEADS, Head

__all__ = ["HEADS", "Head"]

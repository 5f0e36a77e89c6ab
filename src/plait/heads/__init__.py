"""Task heads; importing this package registers them all in `HEADS`."""

from plait.heads import (  # noqa: F401  (registration)
    classification,
    contrastive,
    decoder,
    detection,
    grounding,
    multilabel,
    regression,
)
from plait.heads.base import HEADS, Head

__all__ = ["HEADS", "Head"]

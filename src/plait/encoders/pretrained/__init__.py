"""Pretrained encoders loaded from local weights; importing registers them in `ENCODERS`."""

from plait.encoders.pretrained import encoder  # noqa: F401  (registration)
from plait.encoders.pretrained.encoder import PretrainedEncoder

__all__ = ["PretrainedEncoder"]

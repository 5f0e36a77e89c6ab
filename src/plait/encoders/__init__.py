"""Encoders: one per input column, each returning `EncoderOutput`. Importing this
package registers them all in `ENCODERS`."""

from plait.encoders import audio, image, pretrained, tabular, text, video  # noqa: F401  (registration)
from plait.encoders.base import ENCODERS, Encoder, EncoderOutput

__all__ = ["ENCODERS", "Encoder", "EncoderOutput"]

"""Feature maps steered by the row's other inputs, for heads that draw boxes.

The image encoder's stage maps go through a feature pyramid (torchvision's FPN) to
`channels` channels each, get a learned position signal (a 1×1 convolution of the
x, y coordinates, so "the second from the left" can be read off the map), and are
modulated by the other inputs of the row (text, tabular, audio):

- `film` (default): their pooled features and presence flags predict a per-channel
  scale γ and shift β applied at every location (Perez et al. 2018);
- `cross_attention`: every location attends to the other inputs' tokens (a phrase's
  words), added back residually;
- `none`: the image alone.

A row whose other inputs are all absent is left unmodulated (the image alone), and an
absent input's placeholder never reaches the result (torch.where, as in the fusions);
a row without its image has zero maps (the detection head then finds nothing there).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork

from plait.encoders.base import EncoderOutput
from plait.fusion.base import masked_pooled, masked_tokens, presence_flags

Mode = Literal["film", "cross_attention", "none"]


class ConditionedPyramid(nn.Module):
    def __init__(
        self,
        image_key: str,
        feature_channels: tuple[int, ...],
        context_dims: dict[str, int],
        channels: int,
        levels: int,
        mode: Mode,
        attention_heads: int = 4,
    ) -> None:
        super().__init__()
        if not feature_channels:
            raise ValueError(
                f"the encoder of image column {image_key!r} returns no feature maps; use encoder cnn, or "
                "efficientnet_lite0 / timm (run on every batch, not cached)"
            )
        if not 1 <= levels <= len(feature_channels):
            raise ValueError(f"levels must be 1 to {len(feature_channels)} for this encoder, got {levels}")
        self.image_key = image_key
        self.levels = levels
        self.context = sorted(context_dims) if mode != "none" else []
        self.mode = mode if self.context else "none"
        self.fpn = FeaturePyramidNetwork(list(feature_channels[-levels:]), channels)
        self.position = nn.Conv2d(2, channels, 1)
        if self.mode == "film":
            d_context = sum(context_dims[n] for n in self.context) + len(self.context)
            self.film = nn.Sequential(
                nn.Linear(d_context, channels), nn.ReLU(), nn.Linear(channels, 2 * channels)
            )
        elif self.mode == "cross_attention":
            self.keys = nn.ModuleDict({n: nn.Linear(context_dims[n], channels) for n in self.context})
            # An always-present key, so a row with no token to attend to attends to it.
            self.null = nn.Parameter(torch.zeros(1, 1, channels))
            self.attention = nn.MultiheadAttention(channels, attention_heads, batch_first=True)
            self.norm = nn.LayerNorm(channels)

    def forward(self, inputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> list[Tensor]:
        """The conditioned maps, finest first: each (B, channels, H_l, W_l)."""
        maps = inputs[self.image_key].feature_maps
        assert maps is not None, "the image encoder returned no feature maps"
        # A row without its image gets zero maps, whatever its placeholder held.
        seen = present[self.image_key][:, None, None, None]
        chosen = [torch.where(seen, m.float(), 0.0) for m in maps[-self.levels :]]
        pyramid = self.fpn(OrderedDict((str(i), m) for i, m in enumerate(chosen)))
        out = [m + self.position(_coordinates(m)) for m in pyramid.values()]
        if self.mode == "film":
            return self._film(out, inputs, present)
        if self.mode == "cross_attention":
            return [self._attend(m, inputs, present) for m in out]
        return out

    def _film(
        self, maps: list[Tensor], inputs: dict[str, EncoderOutput], present: dict[str, Tensor]
    ) -> list[Tensor]:
        flags = presence_flags(present, self.context, maps[0].dtype)  # (B, M)
        context = torch.cat([*(masked_pooled(inputs[n], present[n]) for n in self.context), flags], dim=1)
        gamma, beta = self.film(context).chunk(2, dim=1)  # (B, C) each
        some = flags.amax(1, keepdim=True)  # (B, 1): 0 when no other input is present
        gamma, beta = (gamma * some)[:, :, None, None], (beta * some)[:, :, None, None]
        return [(1 + gamma) * m + beta for m in maps]

    def _attend(self, map_: Tensor, inputs: dict[str, EncoderOutput], present: dict[str, Tensor]) -> Tensor:
        b, c, h, w = map_.shape
        keys, masks = [self.null.expand(b, 1, c)], [map_.new_ones(b, 1, dtype=torch.bool)]
        for n in self.context:
            tokens, mask = masked_tokens(inputs[n], present[n])  # (B, T, D), (B, T)
            keys.append(self.keys[n](tokens))
            masks.append(mask)
        key, real = torch.cat(keys, 1), torch.cat(masks, 1)  # (B, 1 + ΣT, C), (B, 1 + ΣT)
        queries = map_.flatten(2).transpose(1, 2)  # (B, H·W, C)
        attended, _ = self.attention(self.norm(queries), key, key, key_padding_mask=~real)
        return (queries + attended).transpose(1, 2).reshape(b, c, h, w)


def _coordinates(map_: Tensor) -> Tensor:
    """(B, 2, H, W): x and y of each location, from -1 (left, top) to 1."""
    b, _, h, w = map_.shape
    ys = torch.linspace(-1, 1, h, device=map_.device, dtype=map_.dtype)
    xs = torch.linspace(-1, 1, w, device=map_.device, dtype=map_.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H, W)
    return grid.expand(b, 2, h, w)

"""An export-friendly twin of the text RNN encoder.

Training runs the GRU/LSTM over packed sequences (each row read to its own length).
Exporters cannot follow packing (`pack_padded_sequence` needs lengths on the host
and a data-dependent sort), so this twin computes the same thing with ops that
export: per layer, the forward direction runs over the right-padded sequence (its
outputs up to each row's length are exactly the packed ones); the backward direction
runs over each row reversed *within its length* (a gather), then is reversed back.
Final states are the outputs at each row's last real step. It reuses the trained
encoder's weights; nothing is retrained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.encoders.base import EncoderOutput
from plait.encoders.text import RNNEncoder


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """(B, L, D) → each row's first `lengths[b]` steps reversed; padding stays put."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, L)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, L)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def _last_step(out: Tensor, lengths: Tensor) -> Tensor:
    """(B, L, H) → (B, H) output at each row's last real step."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
    return out.gather(1, index).squeeze(1)


class MaskedRNN(nn.Module):
    """Same inputs, outputs and weights as an `RNNEncoder` in eval mode."""

    def __init__(self, encoder: RNNEncoder) -> None:
        super().__init__()
        rnn = encoder.rnn
        self.embed = encoder.embed
        self.out_dim = encoder.out_dim
        self.num_layers = rnn.num_layers
        self.dirs = 2 if rnn.bidirectional else 1
        cell = nn.GRU if isinstance(rnn, nn.GRU) else nn.LSTM
        # One unidirectional RNN per (layer, direction), holding the trained weights.
        self.cells = nn.ModuleList()
        for layer in range(rnn.num_layers):
            in_dim = rnn.input_size if layer == 0 else rnn.hidden_size * self.dirs
            for direction in range(self.dirs):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                single = cell(in_dim, rnn.hidden_size, batch_first=True)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(single, f"{name}_l0").data = getattr(rnn, name + suffix).data
                self.cells.append(single)

    def forward(self, x: Tensor) -> EncoderOutput:
        mask = x != 0  # (B, L)
        lengths = mask.sum(1).clamp_min(1)  # an empty text reads one padding step, as packed
        h = self.embed(x)  # (B, L, E)
        finals: list[Tensor] = []
        for layer in range(self.num_layers):
            outs, finals = [], []
            for direction in range(self.dirs):
                cell = self.cells[layer * self.dirs + direction]
                if direction == 0:
                    out, _ = cell(h)
                    finals.append(_last_step(out, lengths))
                else:
                    out, _ = cell(_reverse_within(h, lengths))
                    finals.append(_last_step(out, lengths))
                    out = _reverse_within(out, lengths)
                outs.append(out)
            h = torch.cat(outs, dim=-1)  # (B, L, dirs·H)
        # Packed outputs are zero past each row's length.
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        tokens = torch.where((steps < lengths[:, None]).unsqueeze(-1), h, 0.0)
        return EncoderOutput(tokens, mask, torch.cat(finals, dim=-1))


def export_friendly(module: nn.Module) -> nn.Module:
    """Replace every RNNEncoder inside `module` (in place) by its MaskedRNN twin."""
    for name, child in list(module.named_children()):
        if isinstance(child, RNNEncoder):
            setattr(module, name, MaskedRNN(child))
        else:
            export_friendly(child)
    return module

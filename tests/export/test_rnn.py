from __future__ import annotations

import pytest
import torch

from plait.encoders.text import RNNEncoder
from plait.export.rnn import MaskedRNN, export_friendly


@pytest.mark.parametrize(
    ("cell", "layers", "bidirectional"), [("gru", 1, True), ("gru", 2, True), ("lstm", 2, False)]
)
def test_masked_twin_matches_packed_sequences(cell: str, layers: int, bidirectional: bool):
    torch.manual_seed(0)
    encoder = RNNEncoder(
        40, cell, embed_dim=8, hidden_dim=6, num_layers=layers, bidirectional=bidirectional
    ).eval()
    x = torch.randint(1, 40, (5, 9))
    for row, length in enumerate([9, 3, 1, 0, 5]):  # full, short, one word, empty, middle
        x[row, length:] = 0
    with torch.no_grad():
        packed, masked = encoder(x), MaskedRNN(encoder).eval()(x)
    assert torch.allclose(packed.pooled, masked.pooled, atol=1e-6)
    assert torch.allclose(packed.tokens, masked.tokens, atol=1e-6)
    assert torch.equal(packed.token_mask, masked.token_mask)


def test_export_friendly_swaps_nested_encoders():
    model = torch.nn.ModuleDict({"text": RNNEncoder(10), "other": torch.nn.Linear(2, 2)})
    export_friendly(model)
    assert isinstance(model["text"], MaskedRNN) and isinstance(model["other"], torch.nn.Linear)

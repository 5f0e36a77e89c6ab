"""The multi-label head: per-label sigmoid and binary cross-entropy, positive weights."""

import math

import pytest
import torch

from plait.errors import ConfigError
from plait.heads import HEADS

D = 4


def build(params: dict, frequencies=(0.5, 0.2, 0.0)):
    return HEADS.build("multilabel", params, in_dim=D, num_labels=3, label_frequencies=list(frequencies))


def test_balanced_positive_weights():
    head = build({"pos_weight": "balanced"}, frequencies=(0.5, 0.2, 0.001))
    # (1 - f) / f: 1, 4, 999 → clamped to [1, 100].
    assert head.pos_weight.tolist() == pytest.approx([1.0, 4.0, 100.0])
    assert build({"pos_weight": "balanced"}, frequencies=(0.9, 0.5, 0.0)).pos_weight.tolist() == [
        1.0,
        1.0,
        100.0,
    ]
    assert build({"pos_weight": 3}).pos_weight.tolist() == [3.0, 3.0, 3.0]
    assert build({}).pos_weight is None
    # Rebuilt from the fitted target on load, so never part of the saved weights.
    assert "pos_weight" not in head.state_dict()


def test_loss_is_binary_cross_entropy_with_weights():
    head = build({"pos_weight": 2.0})
    raw = torch.zeros(1, 3)  # every probability 0.5
    target = torch.tensor([[1.0, 0.0, 1.0]])
    # Positives cost 2·ln 2, negatives ln 2: mean over 3 labels = (2 + 1 + 2) / 3 · ln 2.
    assert head.loss(raw, target).item() == pytest.approx(5 / 3 * math.log(2))
    assert build({}).loss(raw, target).item() == pytest.approx(math.log(2))
    assert torch.allclose(head.activate(raw), torch.full((1, 3), 0.5))


@pytest.mark.parametrize("bad", ["often", 0, -1.0, True])
def test_bad_pos_weight_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"head 'multilabel' rejected its parameters.*pos_weight must be"):
        build({"pos_weight": bad})


def test_learns_independent_labels():
    torch.manual_seed(0)
    head = build({"hidden_dim": 16})
    x = torch.randn(80, D)
    y = torch.stack([x[:, 0] > 0, x[:, 1] > 0, (x[:, 0] > 0) & (x[:, 1] > 0)], dim=1).float()
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    for _ in range(200):
        opt.zero_grad()
        head.loss(head(x), y).backward()
        opt.step()
    assert ((head.activate(head(x)) >= 0.5).float() == y).float().mean() > 0.9

"""The contrastive head and its InfoNCE loss against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from plait.encoders.base import EncoderOutput
from plait.errors import ConfigError
from plait.fusion.base import FusedOutput
from plait.heads.contrastive import ContrastiveHead, info_nce


def test_info_nce_matches_clip_on_one_positive_per_row():
    z = torch.eye(2)  # two rows, each paired only with itself: logits = identity
    loss = info_nce(z, z, torch.eye(2, dtype=torch.bool), scale=1.0)
    # Each row: -log(e / (e + 1)) = log(1 + e^-1), the same in both directions.
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_info_nce_spreads_the_target_over_several_positives():
    # Rows 0 and 1 show the same image with two captions; row 2 another image.
    za = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    positive = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    scale = 2.0

    def row_loss(logits: list[float], targets: list[int]) -> float:
        norm = math.log(sum(math.exp(v) for v in logits))
        return -sum(logits[j] - norm for j in targets) / len(targets)

    # a→b: logits = 2 · za @ zbᵀ; rows 0, 1: [2, 1.2, 0] with positives {0, 1}; row 2: [0, 1.6, 2].
    a_to_b = (2 * row_loss([2, 1.2, 0], [0, 1]) + row_loss([0, 1.6, 2], [2])) / 3
    # b→a: the columns: caption 0 → [2, 2, 0], caption 1 → [1.2, 1.2, 1.6], caption 2 → [0, 0, 2].
    b_to_a = (row_loss([2, 2, 0], [0, 1]) + row_loss([1.2, 1.2, 1.6], [0, 1]) + row_loss([0, 0, 2], [2])) / 3
    loss = info_nce(za, zb, positive, scale)
    assert loss.item() == pytest.approx((a_to_b + b_to_a) / 2, abs=1e-5)


def _fused(pooled: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> FusedOutput:
    outputs = {
        k: EncoderOutput(v.unsqueeze(1), torch.ones(len(v), 1, dtype=torch.bool), v)
        for k, v in pooled.items()
    }
    fused = FusedOutput(pooled=torch.zeros(len(next(iter(pooled.values()))), 1))
    fused.inputs, fused.present = outputs, present
    return fused


def test_head_embeds_each_tower_and_leaves_absent_rows_out():
    torch.manual_seed(0)
    head = ContrastiveHead({"image": 6, "caption": 4}, ["image", "caption"], dim=8)
    pooled = {"image": torch.randn(5, 6), "caption": torch.randn(5, 4)}
    present = {
        "image": torch.tensor([1, 1, 1, 1, 0], dtype=torch.bool),
        "caption": torch.ones(5, dtype=torch.bool),
    }
    raw = head(_fused(pooled, present))
    assert raw.shape == (5, 2, 8)
    assert raw[4, 0].isnan().all() and not raw[:4].isnan().any()
    assert torch.allclose(raw[:4].norm(dim=-1), torch.ones(4, 2))
    target = torch.tensor([[0, 0], [1, 1], [2, 2], [3, 3], [-1, 4]])
    _, loss = head.forward_loss(_fused(pooled, present), target)
    # The absent image's placeholder does not matter; the loss backpropagates to the temperature.
    pooled["image"][4] = torch.nan
    _, same = head.forward_loss(_fused(pooled, present), target)
    assert same.item() == pytest.approx(loss.item())
    same.backward()
    assert head.log_scale.grad is not None and head.log_scale.grad.abs() > 0


def test_temperature_starts_where_asked_and_is_clamped():
    head = ContrastiveHead({"a": 2, "b": 2}, ["a", "b"], temperature=0.05)
    assert head.scale.item() == pytest.approx(20.0)
    with torch.no_grad():
        head.log_scale.fill_(10.0)
    assert head.scale.item() == pytest.approx(100.0)
    frozen = ContrastiveHead({"a": 2, "b": 2}, ["a", "b"], learn_temperature=False)
    assert not frozen.log_scale.requires_grad


def test_head_errors():
    with pytest.raises(ConfigError, match=r"column\(s\) audio are not model inputs"):
        ContrastiveHead({"image": 2, "caption": 2}, ["image", "audio"])
    with pytest.raises(ConfigError, match="temperature must lie in"):
        ContrastiveHead({"a": 2, "b": 2}, ["a", "b"], temperature=0)

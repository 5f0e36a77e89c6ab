"""Every registered head: shapes, loss backward, activation (generated)."""

import pytest
import torch

from plait.heads import HEADS

B, D = 6, 10
TARGETS = {
    "category": (torch.tensor([0, 1, 2, 0, 1, 2]), {"num_classes": 3}),
    "binary": (torch.tensor([0.0, 1, 1, 0, 1, 0]), {}),
    "numeric": (torch.tensor([10.0, 12, 9, 11, 10, 13]), {"target_mean": 10.0, "target_std": 2.0}),
    "multilabel": (
        torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]]),
        {"num_labels": 3, "label_frequencies": [0.5, 0.5, 1 / 6]},
    ),
}
# Heads over the pooled vector; token heads (the text decoder) have test_decoder.py.
CASES = [(entry.name, t) for entry in HEADS for t in entry.types if not entry.builder.wants_tokens]


def build(name, type_):
    wanted = HEADS.get(name).data_params
    data = {"in_dim": D, **TARGETS[type_][1]}
    return HEADS.build(name, {}, **{k: v for k, v in data.items() if k in wanted})


def test_every_target_type_has_a_head():
    assert {t for _, t in CASES} == set(TARGETS)
    # Token heads (text generation, retrieval, detection, grounding) have their own test files.
    assert {t for entry in HEADS for t in entry.types} == {*TARGETS, "text", "retrieval", "boxes", "box"}


@pytest.mark.parametrize(("name", "type_"), CASES)
def test_loss_backward_and_activation(name, type_):
    torch.manual_seed(0)
    head = build(name, type_)
    fused = torch.randn(B, D, requires_grad=True)
    raw = head(fused)
    target = TARGETS[type_][0]
    loss = head.loss(raw, target)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert fused.grad is not None
    pred = head.activate(raw.detach())
    if type_ == "category":
        assert pred.shape == (B, 3) and torch.allclose(pred.sum(1), torch.ones(B))
    elif type_ == "multilabel":
        assert pred.shape == (B, 3) and ((pred >= 0) & (pred <= 1)).all()
    else:
        assert pred.shape == (B,)
    if type_ == "binary":
        assert ((pred >= 0) & (pred <= 1)).all()


def test_regression_predicts_in_label_units():
    head = build("regression", "numeric")
    raw = torch.zeros(2)
    assert head.activate(raw).tolist() == [10.0, 10.0]
    # A standardised prediction of 0 against a target at the mean costs nothing.
    assert head.loss(raw, torch.tensor([10.0, 10.0])) == 0
    assert set(head.state_dict()) >= {"target_mean", "target_std"}  # the scale travels with weights


def test_classification_learns_a_separable_problem():
    torch.manual_seed(0)
    head = build("classification", "category")
    x = torch.randn(60, D)
    y = x[:, :3].argmax(1)
    opt = torch.optim.Adam(head.parameters(), lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        head.loss(head(x), y).backward()
        opt.step()
    assert (head(x).argmax(1) == y).float().mean() > 0.9

"""Every registered head (generated from HEADS): built from tiny data parameters, run
once, saved as a run folder saves its model (safetensors) and loaded into a freshly
built head, it gives identical outputs. A head added to the registry is covered
here automatically, or fails until it is listed in SKIPPED with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_model, save_model

from plait.data.processors.text_target import BOS, EOS, PAD
from plait.encoders import EncoderOutput
from plait.fusion.base import FusedOutput
from plait.heads import HEADS, Head

B, D = 6, 10
TOKEN_DIMS = {"caption": 5, "image": 7}
VOCAB, LENGTH = 12, 6
# Every data parameter a builder may ask for (build.py fills them from fitted processors).
DATA = {
    "in_dim": D,
    "num_classes": 3,
    "target_mean": 10.0,
    "target_std": 2.0,
    "num_labels": 3,
    "label_frequencies": [0.5, 0.5, 1 / 6],
    "token_dims": TOKEN_DIMS,
    "towers": ["image", "caption"],
    "vocab_size": VOCAB,
    "max_length": LENGTH,
    "image_key": "image",
    "feature_channels": {"caption": (), "image": (4, 8)},
}
# A target for each type a head serves, (B, ...) as the target processors make them.
TARGETS = {
    "category": torch.tensor([0, 1, 2, 0, 1, 2]),
    "binary": torch.tensor([0.0, 1, 1, 0, 1, 0]),
    "numeric": torch.tensor([10.0, 12, 9, 11, 10, 13]),
    "multilabel": torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]]),
    "text": torch.tensor([[BOS, 4 + i % 5, 5, EOS, PAD, PAD] for i in range(B)]),
    "retrieval": torch.tensor([[i // 2, i] for i in range(B)]),  # rows 0 and 1 show one image
    # Box fractions and class (-1: padding); one box per row.
    "boxes": torch.tensor([[[0.1, 0.1, 0.5, 0.6, i % 3], [0, 0, 0, 0, -1]] for i in range(B)]),
    "box": torch.tensor([[0.1 * (i % 4), 0.2, 0.5, 0.7] for i in range(B)]),
}
# Smaller than the defaults where a head is big (the user's parameters).
PARAMS = {
    "decoder": {"dim": 16, "depth": 1, "heads": 2, "beam_width": 2},
    "detection": {"channels": 32, "levels": 2, "convs": 1},
    "grounding": {"channels": 16, "levels": 2, "convs": 1},
}
# name → why its save/load is not tested here. Empty: every head is.
SKIPPED: dict[str, str] = {}


def build(name: str, seed: int) -> Head:
    torch.manual_seed(seed)
    wanted = HEADS.get(name).data_params
    unknown = sorted(set(wanted) - set(DATA))
    assert not unknown, f"head {name!r} needs data parameter(s) {unknown}: add tiny values to DATA"
    return HEADS.build(name, PARAMS.get(name, {}), **{k: DATA[k] for k in wanted}).eval()


def head_input(head: Head) -> torch.Tensor | FusedOutput:
    torch.manual_seed(100)
    if not head.wants_tokens:
        return torch.randn(B, D)
    inputs = {}
    for name, dim in TOKEN_DIMS.items():
        tokens = torch.randn(B, 3, dim)
        channels = DATA["feature_channels"][name]
        maps = [torch.randn(B, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate(channels)] or None
        mask = torch.ones(B, 3, dtype=torch.bool)
        inputs[name] = EncoderOutput(tokens, mask, tokens.mean(1), maps, (32, 32) if maps else None)
    present = {name: torch.ones(B, dtype=torch.bool) for name in TOKEN_DIMS}
    present["image"][4] = False  # one row without an image
    return FusedOutput(torch.randn(B, D), inputs=inputs, present=present)


def run(head: Head, name: str) -> list[torch.Tensor]:
    """Inference output, and the training-time raw output and loss (dropout off)."""
    x = head_input(head)
    (type_,) = HEADS.get(name).types[:1]
    with torch.no_grad():
        raw, loss = head.forward_loss(x, TARGETS[type_])
        return [_tensor(head(x)), _tensor(raw), loss, head.activate(head(x))]


def _tensor(raw: object) -> torch.Tensor:
    """A raw output as one tensor (the detection head's is FCOS's dict of outputs)."""
    if isinstance(raw, torch.Tensor):
        return raw
    return torch.cat([v.flatten() for v in raw.head_outputs.values()])  # type: ignore[attr-defined]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """Bit-identical tensors (NaN where the other has NaN: absent towers)."""
    for x, y in zip(a, b, strict=True):
        equal = x == y
        if x.is_floating_point():
            equal |= x.isnan() & y.isnan()
        if x.shape != y.shape or not equal.all():
            return False
    return True


def test_every_skipped_head_is_registered_and_has_a_reason():
    assert set(SKIPPED) <= set(HEADS.names())
    assert all(reason.strip() for reason in SKIPPED.values())


def test_every_served_type_has_a_target():
    assert {t for entry in HEADS for t in entry.types} <= set(TARGETS)


@pytest.mark.parametrize("name", HEADS.names())
def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path, name: str):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    head = build(name, seed=0)
    before = run(head, name)
    assert all(torch.isfinite(t.float()).any() for t in before)
    save_model(head, str(tmp_path / "model.safetensors"))  # as plait.train writes model.safetensors
    fresh = build(name, seed=1)
    # Otherwise the comparison below would prove nothing.
    assert not same(run(fresh, name), before), f"{name}: another seed gives the same outputs"
    load_model(fresh, str(tmp_path / "model.safetensors"), strict=True)  # as plait.inference loads it
    assert same(run(fresh, name), before)

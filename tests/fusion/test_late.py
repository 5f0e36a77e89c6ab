"""Late (model-level) fusion: per-modality heads, the three combiners, auxiliary losses."""

import pytest
import torch

from plait.encoders import EncoderOutput
from plait.errors import ConfigError
from plait.fusion import FUSIONS
from plait.heads import HEADS

DIMS = {"audio": 4, "image": 6}
B = 4


def late_head(combine: str, aux_weight: float = 0.5, kind: str = "classification"):
    torch.manual_seed(0)
    fusion = FUSIONS.build("late", {"combine": combine, "aux_weight": aux_weight}, in_dims=DIMS)
    extra = {"num_classes": 3} if kind == "classification" else {}
    heads = {k: HEADS.build(kind, {}, in_dim=d, **extra) for k, d in DIMS.items()}
    return fusion, fusion.wrap(heads).eval()


def fused(fusion, present_image: list[bool]):
    torch.manual_seed(1)
    outs = {}
    for key, d in DIMS.items():
        tokens = torch.randn(B, 2, d)
        outs[key] = EncoderOutput(tokens, torch.ones(B, 2, dtype=torch.bool), tokens.mean(1))
    present = {"audio": torch.ones(B, dtype=torch.bool), "image": torch.tensor(present_image)}
    return fusion(outs, present).pooled


@pytest.mark.parametrize("combine", ["mean", "learned", "stacking"])
def test_combiners_start_as_the_mean_of_present_modalities(combine: str):
    fusion, head = late_head(combine)
    x = fused(fusion, [True, False, True, False])
    raws, flags = head.parts(x)
    combined = head(x)
    mean_both = (raws["audio"] + raws["image"]) / 2
    assert torch.allclose(combined[0], mean_both[0], atol=1e-6)
    # rows without an image: the audio head alone, whatever the image head says
    assert torch.allclose(combined[1], raws["audio"][1], atol=1e-6)


def test_learned_weights_renormalise_over_present_modalities():
    fusion, head = late_head("learned")
    with torch.no_grad():
        head.logits.copy_(torch.tensor([0.0, 2.0]))  # image favoured
    x = fused(fusion, [True, False, True, True])
    raws, _ = head.parts(x)
    w = torch.tensor([0.0, 2.0]).softmax(0)
    assert torch.allclose(head(x)[0], w[0] * raws["audio"][0] + w[1] * raws["image"][0], atol=1e-6)
    assert torch.allclose(head(x)[1], raws["audio"][1], atol=1e-6)


def test_stacking_learns_weights_and_handles_binary_and_regression():
    for kind in ("binary", "regression"):
        fusion, head = late_head("stacking", kind=kind)
        x = fused(fusion, [True, True, False, True])
        assert head(x).shape == (B,)
    fusion, head = late_head("stacking")
    assert head.stack.in_features == 2 * 3 + 2 and head.stack.out_features == 3


def test_aux_loss_counts_each_head_on_its_present_rows_only():
    fusion, head = late_head("mean", aux_weight=1.0)
    x = fused(fusion, [True, False, False, False])
    target = torch.tensor([0, 1, 2, 1])
    raws, flags = head.parts(x)
    expected_aux = (
        torch.nn.functional.cross_entropy(raws["audio"], target)
        + torch.nn.functional.cross_entropy(raws["image"][:1], target[:1])
    ) / 2
    raw, loss = head.forward_loss(x, target)
    assert torch.allclose(loss, head.loss(raw, target) + expected_aux)
    _, no_aux = late_head("mean", aux_weight=0.0)[1].forward_loss(x, target)
    assert torch.allclose(no_aux, head.loss(raw, target))


def test_every_head_gets_gradient():
    fusion, head = late_head("learned")
    head.train()
    x = fused(fusion, [True, True, False, True])
    _, loss = head.forward_loss(x, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad is not None for p in head.parameters())


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="combine must be one of mean, learned, stacking"):
        FUSIONS.build("late", {"combine": "vote"}, in_dims=DIMS)
    with pytest.raises(ConfigError, match="aux_weight"):
        FUSIONS.build("late", {"aux_weight": -1}, in_dims=DIMS)

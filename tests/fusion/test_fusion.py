"""Every registered fusion: shape, backward, missing-modality invariance (generated)."""

import pytest
import torch

from plait.encoders import EncoderOutput
from plait.fusion import FUSIONS

B = 5
DIMS = {"text": 6, "image": 4, "numeric": 3}


def outputs(fill: float | None = None) -> dict[str, EncoderOutput]:
    torch.manual_seed(0)
    result = {}
    for name, d in DIMS.items():
        tokens = torch.randn(B, 3, d, requires_grad=True)
        result[name] = EncoderOutput(tokens, torch.ones(B, 3, dtype=torch.bool), tokens.mean(1))
    if fill is not None:  # overwrite the image row 1 placeholder
        img = result["image"]
        tokens = img.tokens.detach().clone()
        tokens[1] = fill
        result["image"] = EncoderOutput(tokens, img.token_mask, tokens.mean(1))
    return result


def present() -> dict[str, torch.Tensor]:
    p = {name: torch.ones(B, dtype=torch.bool) for name in DIMS}
    p["image"][1] = False  # row 1 has no image
    p["text"][3] = False
    return p


# Fusions without a trainable parameter (every other one must have some).
PARAMETER_FREE = {"concat", "late"}
# fusion → {parameter: why it legitimately gets no gradient}. Empty: every one does.
NO_GRADIENT: dict[str, dict[str, str]] = {}
# Fusions that output a token sequence: how many tokens they add to the inputs' ([CLS]).
SEQUENCE_FUSIONS = {"attention": 1}


def nonzero(grad: torch.Tensor | None) -> bool:
    return grad is not None and bool(grad.abs().sum() > 0)


def check_input_gradients(outs: dict[str, EncoderOutput], pres: dict[str, torch.Tensor]) -> None:
    """Every present row of every input gets a gradient; an absent row's placeholder none."""
    for key, out in outs.items():
        grad = out.tokens.grad
        assert grad is not None, key
        for row in range(B):
            assert nonzero(grad[row]) == bool(pres[key][row]), (key, row)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_shape_and_backward(name: str):
    torch.manual_seed(0)
    fusion = FUSIONS.build(name, {}, in_dims=DIMS)  # training mode, dropout on
    outs, pres = outputs(), present()
    fused = fusion(outs, pres)
    assert fused.pooled.shape == (B, fusion.out_dim)
    # A random projection rather than a sum: the sum of a LayerNorm's outputs is constant,
    # so its gradient is zero everywhere and would hide a dead path.
    (fused.pooled * torch.randn_like(fused.pooled)).sum().backward()
    check_input_gradients(outs, pres)
    params = dict(fusion.named_parameters())
    assert (not params) == (name in PARAMETER_FREE), f"{name}: update PARAMETER_FREE"
    dead = {n for n, p in params.items() if p.requires_grad and not nonzero(p.grad)}
    assert dead == set(NO_GRADIENT.get(name, {})), f"{name}: parameters without a gradient"


@pytest.mark.parametrize("name", FUSIONS.names())
def test_tokens_have_their_shape_and_carry_gradient(name: str):
    torch.manual_seed(0)
    fusion = FUSIONS.build(name, {}, in_dims=DIMS)
    outs, pres = outputs(), present()
    fused = fusion(outs, pres)
    if name not in SEQUENCE_FUSIONS:
        assert fused.tokens is None and fused.token_mask is None, f"{name}: update SEQUENCE_FUSIONS"
        return
    assert fused.tokens is not None and fused.token_mask is not None
    extra = SEQUENCE_FUSIONS[name]
    length = extra + sum(o.tokens.shape[1] for o in outs.values())
    assert fused.tokens.shape == (B, length, fusion.out_dim)  # (B, T, D)
    assert fused.token_mask.shape == (B, length) and fused.token_mask.dtype == torch.bool
    # Real tokens: the fusion's own, and those of the inputs each row has (3 per input).
    real = extra + 3 * torch.stack(list(pres.values())).sum(0)
    assert fused.token_mask.sum(1).tolist() == real.tolist()
    assert torch.isfinite(fused.tokens).all()
    mask = fused.token_mask.unsqueeze(-1)
    (torch.where(mask, fused.tokens, 0.0) * torch.randn_like(fused.tokens)).sum().backward()
    check_input_gradients(outs, pres)


def test_some_fusion_outputs_tokens():
    assert set(SEQUENCE_FUSIONS) <= set(FUSIONS.names())
    assert set(PARAMETER_FREE) | set(NO_GRADIENT) <= set(FUSIONS.names())


@pytest.mark.parametrize("name", FUSIONS.names())
@pytest.mark.parametrize("fill", [0.0, 123.0, float("nan")])
def test_missing_modality_ignores_its_placeholder(name: str, fill: float):
    fusion = FUSIONS.build(name, {}, in_dims=DIMS).eval()
    reference = fusion(outputs(), present()).pooled
    changed = fusion(outputs(fill), present()).pooled
    assert torch.allclose(reference[1], changed[1], equal_nan=False)
    assert not torch.isnan(changed).any()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_key_order_does_not_matter(name: str):
    fusion = FUSIONS.build(name, {}, in_dims=DIMS).eval()
    outs, pres = outputs(), present()
    shuffled = {k: outs[k] for k in reversed(list(outs))}
    assert torch.equal(fusion(outs, pres).pooled, fusion(shuffled, pres).pooled)


def test_concat_appends_presence_flags():
    fusion = FUSIONS.build("concat", {}, in_dims=DIMS)
    fused = fusion(outputs(), present()).pooled
    assert fusion.out_dim == sum(DIMS.values()) + 3
    # flags in sorted key order: image, numeric, text
    assert fused[1, -3:].tolist() == [0.0, 1.0, 1.0]
    assert fused[1, :4].abs().sum() == 0  # image features zeroed


@pytest.mark.parametrize("name", FUSIONS.names())
@pytest.mark.parametrize("n_modalities", [2, 3, 4])
def test_any_number_of_modalities(name: str, n_modalities: int):
    dims = {f"m{i}": 3 + i for i in range(n_modalities)}
    torch.manual_seed(0)
    outs = {}
    for key, d in dims.items():
        tokens = torch.randn(B, 2 + int(key[1:]), d)
        outs[key] = EncoderOutput(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool), tokens.mean(1))
    pres = {k: torch.ones(B, dtype=torch.bool) for k in dims}
    pres["m0"][0] = False
    pres["m1"][1] = False
    fusion = FUSIONS.build(name, {}, in_dims=dims).eval()
    fused = fusion(outs, pres).pooled
    assert fused.shape == (B, fusion.out_dim) and torch.isfinite(fused).all()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_deterministic_and_save_load_round_trip(tmp_path, name: str):
    from safetensors.torch import load_model, save_model

    torch.manual_seed(0)
    fusion = FUSIONS.build(name, {}, in_dims=DIMS).eval()
    first = fusion(outputs(), present()).pooled
    assert torch.equal(first, fusion(outputs(), present()).pooled)
    save_model(fusion, str(tmp_path / "f.safetensors"))
    torch.manual_seed(1)
    other = FUSIONS.build(name, {}, in_dims=DIMS).eval()
    load_model(other, str(tmp_path / "f.safetensors"))
    assert torch.allclose(first, other(outputs(), present()).pooled)


def test_row_with_every_modality_missing_is_finite():
    pres = {n: torch.zeros(B, dtype=torch.bool) for n in DIMS}
    for name in FUSIONS.names():
        fused = FUSIONS.build(name, {}, in_dims=DIMS).eval()(outputs(float("nan")), pres).pooled
        assert torch.isfinite(fused).all(), name


def test_film_target_must_be_an_input():
    from plait.errors import ConfigError

    with pytest.raises(ConfigError, match="film target 'video' is not an input"):
        FUSIONS.build("film", {"target": "video"}, in_dims=DIMS)

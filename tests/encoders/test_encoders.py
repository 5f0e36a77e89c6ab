"""Every registered encoder: output contract, backward pass, save/load (generated)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_model, save_model

from plait.encoders import ENCODERS, EncoderOutput
from plait.encoders.pretrained import PretrainedEncoder

B = 4
# An example input per column type and the data-derived sizes the builder needs.
INPUTS = {
    "image": (lambda: torch.randn(B, 3, 16, 16), {"in_channels": 3}),
    "text": (
        lambda: torch.tensor([[2, 3, 4, 0], [5, 0, 0, 0], [0, 0, 0, 0], [6, 7, 8, 9]]),
        {"vocab_size": 10},
    ),
    "audio": (lambda: _audio(), {"n_mels": 8}),
    "video": (lambda: _video(), {}),
    "numeric": (lambda: torch.randn(B, 2), {"in_features": 2}),
    "category": (lambda: torch.tensor([0, 1, 2, 1]), {"num_embeddings": 3}),
    # two numeric columns (value, missing flag) then two category ids, as TabularProcessor gives
    "tabular": (
        lambda: torch.cat([torch.randn(B, 4), torch.tensor([[0.0, 1], [2, 0], [1, 4], [0, 3]])], dim=1),
        {"num_numeric": 2, "category_sizes": [3, 5]},
    ),
}


def _audio() -> torch.Tensor:
    """(B, 1 + n_mels, T): row 0 the frame mask (row 2 is short, row 3 silent/missing)."""
    x = torch.randn(B, 9, 40)
    x[:, 0] = 1.0
    x[2, 0, 15:] = 0.0
    x[3, 0] = 0.0
    return x


def _video() -> torch.Tensor:
    """(B, K, 1 + 3, H, W): channel 0 the frame mask (row 2 is short, row 3 missing)."""
    x = torch.randn(B, 4, 4, 16, 16)
    x[:, :, 0] = 1.0
    x[2, 2:, 0] = 0.0
    x[3, :, 0] = 0.0
    return x


CASES = [(entry.name, t) for entry in ENCODERS for t in entry.types]


# Pretrained encoders in their default (frozen, cached) mode read backbone features;
# their backbones are tested in test_pretrained.py.
FEATURES = (lambda: torch.randn(B, 12), {"feature_dim": 12})


# A video's cached features: (B, K, 1 + F) per sampled frame, column 0 the frame mask.
VIDEO_FEATURES = (
    lambda: torch.cat([_video()[:, :, :1, 0, 0], torch.randn(B, 4, 12)], dim=2),
    {"feature_dim": 12},
)


def example(name: str, type_: str):
    builder = ENCODERS.get(name).builder
    pretrained = isinstance(builder, type) and issubclass(builder, PretrainedEncoder)
    if pretrained:
        return VIDEO_FEATURES if type_ == "video" else FEATURES
    return INPUTS[type_]


def build(name: str, type_: str):
    _, data = example(name, type_)
    wanted = ENCODERS.get(name).data_params
    return ENCODERS.build(name, {}, **{k: v for k, v in data.items() if k in wanted})


def test_every_input_type_has_an_encoder():
    assert {t for _, t in CASES} == set(INPUTS)


@pytest.mark.parametrize(("name", "type_"), CASES)
def test_output_contract_and_backward(name: str, type_: str):
    torch.manual_seed(0)
    encoder = build(name, type_)
    out = encoder(example(name, type_)[0]())
    assert isinstance(out, EncoderOutput)
    d = encoder.out_dim
    assert out.pooled.shape == (B, d)
    assert out.tokens.shape[0] == B and out.tokens.shape[2] == d
    assert out.token_mask.shape == out.tokens.shape[:2] and out.token_mask.dtype == torch.bool
    (out.pooled.sum() + out.tokens.sum()).backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize(("name", "type_"), CASES)
def test_save_load_gives_same_output(tmp_path: Path, name: str, type_: str):
    torch.manual_seed(0)
    encoder = build(name, type_).eval()
    x = example(name, type_)[0]()
    save_model(encoder, str(tmp_path / "w.safetensors"))
    torch.manual_seed(1)
    other = build(name, type_).eval()
    load_model(other, str(tmp_path / "w.safetensors"))
    assert torch.allclose(encoder(x).pooled, other(x).pooled)


def test_text_padding_does_not_change_the_result():
    torch.manual_seed(0)
    for name in ("gru", "lstm", "bag"):
        enc = ENCODERS.build(name, {}, vocab_size=10).eval()
        short = enc(torch.tensor([[2, 3, 4]])).pooled
        padded = enc(torch.tensor([[2, 3, 4, 0, 0, 0]])).pooled
        assert torch.allclose(short, padded, atol=1e-6), name


def test_user_sizes_are_honoured():
    enc = ENCODERS.build("cnn", {"channels": [4, 8, 8, 8], "out_dim": 5}, in_channels=1)
    out = enc(torch.randn(2, 1, 32, 32))
    assert out.pooled.shape == (2, 5) and out.tokens.shape == (2, 4, 5)  # 32 / 2**4 = 2 → 2×2 cells
    assert ENCODERS.build("lstm", {"bidirectional": False, "hidden_dim": 6}, vocab_size=5).out_dim == 6


def test_a_strided_stem_keeps_the_shapes_and_weights():
    """stem_stride 2 downsamples the first stage by the conv's stride, not a max-pool:
    same token grid and parameters, a stride-2 first conv and no first pool."""
    plain = ENCODERS.build("cnn", {}, in_channels=3)
    strided = ENCODERS.build("cnn", {"stem_stride": 2}, in_channels=3)
    x = torch.randn(2, 3, 32, 32)
    assert strided(x).tokens.shape == plain(x).tokens.shape == (2, 16, 64)  # 32 / 2**3 = 4 → 4×4
    assert [p.shape for p in strided.parameters()] == [p.shape for p in plain.parameters()]
    assert strided.features[0].stride == (2, 2) and isinstance(strided.features[1], torch.nn.Identity)


@pytest.mark.parametrize("name", ["audio_cnn", "audio_cnn1d", "audio_gru"])
def test_audio_token_mask_follows_the_real_frames(name: str):
    enc = ENCODERS.build(name, {}, n_mels=8).eval()
    out = enc(_audio())
    counts = out.token_mask.sum(1).tolist()
    assert counts[0] == counts[1] == out.tokens.shape[1]  # full clips
    assert 0 < counts[2] < counts[0]  # the short clip
    assert counts[3] == 0 and out.pooled[3].abs().sum() == 0  # nothing real: zeros


@pytest.mark.parametrize("name", ["tabular_mlp", "ft_transformer"])
def test_tabular_encoders_read_every_column(name: str):
    torch.manual_seed(0)
    enc = build(name, "tabular").eval()
    x = INPUTS["tabular"][0]()
    base = enc(x).pooled
    for col in (0, 2, 4, 5):  # each numeric value and each category id matters
        changed = x.clone()
        changed[:, col] = changed[:, col] + 1 if col < 4 else (changed[:, col] + 1) % 3
        assert not torch.allclose(enc(changed).pooled, base), col
    if name == "ft_transformer":
        assert enc(x).tokens.shape == (B, 4, enc.out_dim)  # one token per column

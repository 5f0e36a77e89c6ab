"""Video encoders: the frame mask, every temporal head, and what order buys."""

import pytest
import torch
from torch import nn

from plait.encoders import ENCODERS
from plait.encoders.video import TemporalHead
from plait.fusion import FUSIONS

MODES = ("mean", "attention", "conv", "transformer")


def clips(b: int = 3, k: int = 6) -> torch.Tensor:
    """(B, K, 1 + 3, 16, 16); clip 1 has 3 real frames, clip 2 none (a missing cell)."""
    x = torch.randn(b, k, 4, 16, 16)
    x[:, :, 0] = 1.0
    x[1, 3:, 0] = 0.0
    x[2, :, 0] = 0.0
    return x


@pytest.mark.parametrize("mode", MODES)
def test_padded_frames_change_nothing(mode: str):
    torch.manual_seed(0)
    enc = ENCODERS.build("video_cnn", {"temporal": mode, "channels": [4, 8], "out_dim": 16}).eval()
    x = clips()
    out = enc(x)
    assert out.tokens.shape == (3, 6, 16) and out.token_mask.sum(1).tolist() == [6, 3, 0]
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    noisy = x.clone()
    noisy[1, 3:, 1:] = torch.randn(3, 3, 16, 16) * 100  # what the padded frames hold
    noisy[2, :, 1:] = 7.0
    again = enc(noisy)
    assert torch.allclose(out.pooled[1:], again.pooled[1:], atol=1e-5)
    assert out.pooled[2].abs().sum() == 0  # no real frame: zeros


@pytest.mark.parametrize("mode", MODES)
def test_order_matters_unless_the_head_is_a_mean(mode: str):
    torch.manual_seed(0)
    head = TemporalHead(8, mode).eval()
    with torch.no_grad():
        if head.position is not None:
            head.position.normal_()
    frames, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    forward = head(frames, mask)[1]
    backward = head(frames.flip(1), mask)[1]
    assert torch.allclose(forward, backward, atol=1e-5) == (mode == "mean")


def direction_set(n: int = 64, k: int = 6, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright bar sweeping left→right (label 1) or right→left (label 0) over k frames:
    both visit the same positions, so a bag of frames cannot tell them apart."""
    x = torch.zeros(n, k, 4, size, size)
    x[:, :, 0] = 1.0
    labels = torch.arange(n) % 2
    for i in range(n):
        for t in range(k):
            col = round(t * (size - 2) / (k - 1))
            col = col if labels[i] else size - 2 - col
            x[i, t, 1:, :, col : col + 2] = 1.0
    return x, labels


@pytest.mark.parametrize(("mode", "learns"), [("mean", False), ("conv", True)])
def test_a_temporal_head_learns_direction_that_a_mean_cannot(mode: str, learns: bool):
    torch.manual_seed(0)
    x, y = direction_set()
    enc = ENCODERS.build("video_cnn", {"temporal": mode, "channels": [4, 8], "out_dim": 16, "grid": 2})
    head = nn.Linear(16, 2)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(enc(x).pooled), y)
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        accuracy = (head(enc(x).pooled).argmax(1) == y).float().mean().item()
    assert (accuracy > 0.95) if learns else (accuracy < 0.65), accuracy


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_takes_video_tokens_with_frames_and_clips_missing(fusion: str):
    """Video tokens (padded frames masked, one clip missing) beside a sound track missing
    in another row: finite, and the missing clip's placeholder changes nothing (late
    fusion included: it passes each input's pooled features to its per-input heads)."""
    torch.manual_seed(0)
    video = ENCODERS.build("video_cnn", {"channels": [4, 8], "out_dim": 16}).eval()
    sound = ENCODERS.build("audio_cnn1d", {"channels": [8], "out_dim": 8}, n_mels=8).eval()
    model = FUSIONS.build(fusion, {}, in_dims={"clip": 16, "clip:audio": 8}).eval()
    spec = torch.randn(3, 9, 32)
    spec[:, 0] = 1.0
    spec[0, 0] = 0.0  # row 0: no sound track
    present = {"clip": torch.tensor([True, True, False]), "clip:audio": torch.tensor([False, True, True])}
    x = clips()
    fused = model({"clip": video(x), "clip:audio": sound(spec)}, present)
    assert torch.isfinite(fused.pooled).all()
    x[2, :, 1:] = 50.0  # the missing clip's placeholder
    again = model({"clip": video(x), "clip:audio": sound(spec)}, present)
    assert torch.allclose(fused.pooled, again.pooled, atol=1e-5)

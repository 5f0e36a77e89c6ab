"""The text decoder head: shapes, causal masking, decoding strategies, a copy task."""

import pytest
import torch

from plait.data.processors.text_target import BOS, EOS, PAD
from plait.encoders import EncoderOutput
from plait.errors import ConfigError
from plait.fusion.base import FusedOutput
from plait.heads import HEADS

V, L, B = 12, 8, 3


def head(**params):
    torch.manual_seed(0)
    params = {"dim": 32, "depth": 1, "heads": 2, **params}
    return HEADS.build("decoder", params, in_dim=5, token_dims={"src": 6}, vocab_size=V, max_length=L)


def fused(tokens: torch.Tensor | None = None, present: torch.Tensor | None = None) -> FusedOutput:
    torch.manual_seed(1)
    tokens = torch.randn(B, 4, 6) if tokens is None else tokens
    out = EncoderOutput(tokens, torch.ones(B, 4, dtype=torch.bool), tokens.mean(1))
    present = torch.ones(B, dtype=torch.bool) if present is None else present
    return FusedOutput(torch.randn(B, 5), inputs={"src": out}, present={"src": present})


def targets() -> torch.Tensor:
    return torch.tensor([[BOS, 5, 6, 7, EOS, PAD], [BOS, 8, EOS, PAD, PAD, PAD], [BOS, 4, 4, 9, 10, EOS]])


def test_training_shapes_and_loss_ignore_padding():
    h = head()
    logits, loss = h.forward_loss(fused(), targets())
    assert logits.shape == (B, 5, V) and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert h.embed.weight.grad is not None
    preds = h.activate(logits)
    assert preds.shape == (B, 5) and preds.dtype == torch.long


def test_a_position_never_sees_later_tokens():
    h = head().eval()
    f = fused()
    memory, mask = h.memory(f)
    ids = targets()
    changed = ids.clone()
    changed[:, 3:] = 11
    a, b = h.logits(memory, mask, ids), h.logits(memory, mask, changed)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_absent_input_is_masked_out_of_the_memory():
    h = head().eval()
    present = torch.tensor([True, False, True])
    tokens = torch.randn(B, 4, 6)
    other = tokens.clone()
    other[1] = 1000.0
    a = h.generate(fused(tokens, present))
    b = h.generate(fused(other, present))
    assert torch.equal(a[1], b[1])


def test_beam_search_is_the_default():
    h = head().eval()
    f = fused()
    assert h.options["decoding"] == "beam" and h.options["beam_width"] == 4
    assert torch.equal(h.generate(f), h.generate(f, decoding="beam", beam_width=4))


def test_beam_of_width_one_and_top1_sampling_equal_greedy():
    h = head().eval()
    f = fused()
    greedy = h.generate(f, decoding="greedy")
    assert torch.equal(h.generate(f, decoding="beam", beam_width=1), greedy)
    torch.manual_seed(3)
    assert torch.equal(h.generate(f, decoding="sample", top_k=1), greedy)
    assert greedy[:, 0].eq(BOS).all() and greedy.shape[1] <= L


def test_beam_search_finds_at_least_the_greedy_likelihood():
    h = head().eval()
    f = fused()
    memory, mask = h.memory(f)

    def logprob(ids: torch.Tensor) -> torch.Tensor:
        logp = h.logits(memory, mask, ids[:, :-1]).log_softmax(-1)
        picked = logp.gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return (picked * (ids[:, 1:] != PAD)).sum(1)

    greedy = h.generate(f, decoding="greedy", max_length=4)
    beam = h.generate(f, decoding="beam", beam_width=5, length_penalty=0.0, max_length=4)
    width = max(greedy.shape[1], beam.shape[1])
    pad = torch.nn.functional.pad
    greedy, beam = pad(greedy, (0, width - greedy.shape[1])), pad(beam, (0, width - beam.shape[1]))
    assert (logprob(beam) >= logprob(greedy) - 1e-5).all()


@pytest.mark.slow
def test_learns_a_copy_task_to_exact_match():
    """Memory = the source digits' embeddings; the target repeats them."""
    torch.manual_seed(0)
    h = head(dim=48, depth=2, label_smoothing=0.0, dropout=0.0)
    source_embed = torch.nn.Embedding(V, 6)
    optimiser = torch.optim.Adam([*h.parameters(), *source_embed.parameters()], lr=3e-3)

    def batch(n: int) -> tuple[FusedOutput, torch.Tensor]:
        digits = torch.randint(4, V, (n, 4))
        tokens = source_embed(digits) + torch.eye(4, 6).unsqueeze(0)  # + position
        out = EncoderOutput(tokens, torch.ones(n, 4, dtype=torch.bool), tokens.mean(1))
        f = FusedOutput(
            torch.zeros(n, 5), inputs={"src": out}, present={"src": torch.ones(n, dtype=torch.bool)}
        )
        target = torch.cat([torch.full((n, 1), BOS), digits, torch.full((n, 1), EOS)], dim=1)
        return f, target

    for _ in range(400):
        f, target = batch(32)
        _, loss = h.forward_loss(f, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    h.eval()
    with torch.no_grad():
        f, target = batch(64)
        out = h.generate(f, max_length=6)
    exact = (out[:, : target.shape[1]] == target).all(1).float().mean()
    assert exact >= 0.9, float(exact)


def test_unknown_decoding_is_a_config_error():
    with pytest.raises(ConfigError, match="decoding must be one of greedy, beam, sample"):
        head(decoding="viterbi")

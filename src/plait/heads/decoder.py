"""Text generation head: an autoregressive transformer decoder (Vaswani et al. 2017)
cross-attending over the inputs' tokens.

Memory: every input's encoder tokens, projected to `dim` with a learned per-input
type embedding (absent inputs and padding masked out), plus the fused vector as one
always-present token, so any fusion method can condition generation. Trained with
teacher forcing and label smoothing; decoding is beam search by default (width 4, with
the GNMT length penalty, Wu et al. 2016: it keeps a likelier caption than greedy's
first-choice words, at about width × the decoding time), greedy, or sampling
(temperature, top-k, nucleus/top-p, Holtzman et al. 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.data.processors.text_target import BOS, EOS, PAD
from plait.errors import ConfigError
from plait.fusion.base import FusedOutput, masked_tokens
from plait.heads.base import HEADS, Head

DECODING = ("greedy", "beam", "sample")


@HEADS.register("decoder", types=("text",), data_params=("in_dim", "token_dims", "vocab_size", "max_length"))
class DecoderHead(Head):
    wants_tokens = True

    def __init__(
        self,
        in_dim: int,
        token_dims: dict[str, int],
        vocab_size: int,
        max_length: int,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        label_smoothing: float = 0.1,
        decoding: str = "beam",
        beam_width: int = 4,
        length_penalty: float = 0.6,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> None:
        super().__init__()
        if decoding not in DECODING:
            raise ConfigError(f"decoding must be one of {', '.join(DECODING)}, got {decoding!r}")
        self.names = sorted(token_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in token_dims.items()})
        self.types = nn.Parameter(torch.randn(len(self.names) + 1, dim) * 0.02)  # + the fused token
        self.fused_proj = nn.Linear(in_dim, dim)
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.position = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerDecoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab_size)
        self.max_length = max_length
        self.label_smoothing = label_smoothing
        self.options = {
            "decoding": decoding,
            "beam_width": beam_width,
            "length_penalty": length_penalty,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
        }

    # -- memory and one decoder pass ------------------------------------------------------
    def memory(self, fused: FusedOutput) -> tuple[Tensor, Tensor]:
        """(B, T, dim) memory tokens and their (B, T) mask of real tokens."""
        assert fused.inputs is not None and fused.present is not None
        parts = [(self.fused_proj(fused.pooled) + self.types[-1]).unsqueeze(1)]  # (B, 1, dim)
        masks = [torch.ones(len(fused.pooled), 1, dtype=torch.bool, device=fused.pooled.device)]
        for i, name in enumerate(self.names):
            tokens, mask = masked_tokens(fused.inputs[name], fused.present[name])
            parts.append(self.proj[name](tokens) + self.types[i])
            masks.append(mask)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def logits(self, memory: Tensor, memory_mask: Tensor, ids: Tensor) -> Tensor:
        """(B, L) ids so far → (B, L, V) next-token logits (causal: no position sees later ones)."""
        length = ids.shape[1]
        x = self.embed(ids) + self.position[:length]
        # True = may not attend: every position above the diagonal (the future).
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)
        h = self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=ids == PAD,
            memory_key_padding_mask=~memory_mask,
        )
        return self.out(self.norm(h))

    # -- training -------------------------------------------------------------------------
    def forward_loss(self, fused: FusedOutput, target: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        memory, mask = self.memory(fused)
        logits = self.logits(memory, mask, target[:, :-1])  # teacher forcing: (B, L-1, V)
        return logits, self.loss(logits, target)

    def loss(self, raw: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            raw.transpose(1, 2), target[:, 1:], ignore_index=PAD, label_smoothing=self.label_smoothing
        )

    def activate(self, raw: Tensor) -> Tensor:
        """Teacher-forced logits → predicted ids (validation); generated ids pass through."""
        return raw.argmax(-1) if raw.is_floating_point() else raw

    # -- inference --------------------------------------------------------------------------
    def forward(self, fused: FusedOutput) -> Tensor:  # type: ignore[override]
        return self.generate(fused)

    @torch.no_grad()
    def generate(
        self, fused: FusedOutput, max_length: int | None = None, **options: float | int | str
    ) -> Tensor:
        """(B, L) generated ids, [BOS] first, [PAD] after [EOS]."""
        opts = {**self.options, **options}
        if opts["decoding"] not in DECODING:
            raise ConfigError(f"decoding must be one of {', '.join(DECODING)}, got {opts['decoding']!r}")
        steps = min(max_length or self.max_length, self.max_length)
        memory, mask = self.memory(fused)
        if opts["decoding"] == "beam":
            return self._beam(memory, mask, steps, int(opts["beam_width"]), float(opts["length_penalty"]))
        return self._step_by_step(memory, mask, steps, opts)

    def _step_by_step(self, memory: Tensor, mask: Tensor, steps: int, opts: dict) -> Tensor:
        b = len(memory)
        ids = torch.full((b, 1), BOS, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range(steps - 1):
            next_logits = self.logits(memory, mask, ids)[:, -1]  # (B, V)
            next_logits[:, [PAD, BOS]] = float("-inf")  # never generated
            if opts["decoding"] == "sample":
                token = _sample(
                    next_logits, float(opts["temperature"]), int(opts["top_k"]), float(opts["top_p"])
                )
            else:
                token = next_logits.argmax(-1)
            token = torch.where(done, PAD, token)
            ids = torch.cat([ids, token.unsqueeze(1)], dim=1)
            done |= token == EOS
            if done.all():
                break
        return ids

    def _beam(self, memory: Tensor, mask: Tensor, steps: int, width: int, alpha: float) -> Tensor:
        """Beam search per row; finished beams keep their score, normalised by
        ((5 + length) / 6) ** alpha when ranked."""
        b, device = len(memory), memory.device
        memory = memory.repeat_interleave(width, 0)  # (B·W, T, dim)
        mask = mask.repeat_interleave(width, 0)
        ids = torch.full((b * width, 1), BOS, dtype=torch.long, device=device)
        scores = torch.zeros(b, width, device=device)
        scores[:, 1:] = float("-inf")  # all beams start identical: keep one
        done = torch.zeros(b * width, dtype=torch.bool, device=device)
        for _ in range(steps - 1):
            logp = self.logits(memory, mask, ids)[:, -1].log_softmax(-1)  # (B·W, V)
            logp[:, [PAD, BOS]] = float("-inf")
            # A finished beam can only be extended by PAD, at no cost.
            logp[done] = float("-inf")
            logp[done, PAD] = 0.0
            v = logp.shape[1]
            total = (scores.view(-1, 1) + logp).view(b, width * v)
            scores, flat = total.topk(width, dim=1)  # (B, W)
            beam, token = flat // v, flat % v
            rows = (torch.arange(b, device=device).unsqueeze(1) * width + beam).view(-1)
            ids = torch.cat([ids[rows], token.view(-1, 1)], dim=1)
            done = done[rows] | (token.view(-1) == EOS)
            if done.all():
                break
        lengths = ((ids != PAD) & (ids != BOS)).sum(1).view(b, width).float()
        ranked = scores / ((5 + lengths) / 6) ** alpha
        best = ranked.argmax(1)
        return ids.view(b, width, -1)[torch.arange(b, device=device), best]


def _sample(logits: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    logits = logits / max(temperature, 1e-5)
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) > top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(-1), 1).squeeze(1)

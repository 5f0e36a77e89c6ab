"""Metrics for generated text: BLEU and chrF (sacrebleu) against every reference of an
example, exact match, and word error rate against the row's own target. All on the
target's normalised form (TextTarget.normalise, the form predictions decode to):
lower-cased natural text, or words and punctuation apart for a word vocabulary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import sacrebleu
from torchmetrics.functional.text import word_error_rate


def references(texts: Sequence[str], groups: Sequence[Hashable]) -> list[list[str]]:
    """Per row, the targets of every row with the same inputs (Flickr: 5 captions of one
    image), its own first."""
    by_group: dict[Hashable, list[str]] = defaultdict(list)
    for text, group in zip(texts, groups, strict=True):
        by_group[group].append(text)
    return [[own, *(t for t in by_group[g] if t is not own)] for own, g in zip(texts, groups, strict=True)]


def text_metrics(hypotheses: list[str], refs: list[list[str]]) -> dict[str, float]:
    """bleu (BLEU-4, 0–100), chrf (0–100), exact_match (equals any reference) and wer
    (against each row's own target, refs[i][0])."""
    width = max((len(r) for r in refs), default=1)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    own = [r[0] for r in refs]
    return {
        # Hypotheses and references are normalised alike; force=True stops sacrebleu
        # warning about word-vocabulary texts, already split into words and punctuation
        # (its 13a tokenizer splits natural text the same way, so scores compare).
        "bleu": float(sacrebleu.corpus_bleu(hypotheses, streams, force=True).score),
        "chrf": float(sacrebleu.corpus_chrf(hypotheses, streams).score),
        "exact_match": sum(h in r for h, r in zip(hypotheses, refs, strict=True)) / max(1, len(refs)),
        "wer": float(word_error_rate(hypotheses, own)) if own else 0.0,
    }

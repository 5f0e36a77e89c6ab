"""Text targets (captioning, speech-to-text, translation): a subword vocabulary
fitted on the training targets with `tokenizers`, and decoding back to strings.

`tokenizer: bpe` (the default) is byte-level BPE (GPT-2's pre-tokenizer: a word keeps
its leading space, punctuation is apart), so a word never seen in training is written
from pieces ("redcat" → "Ġred" "cat") and decoding gives natural text ("a dog runs.").
`tokenizer: word` is the whole-word vocabulary of runs written before (unseen words
cannot be written); a saved state without `tokenizer` is one of those.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from torch import Tensor

from plait.data.processors.base import is_empty
from plait.data.processors.targets import TargetProcessor, check_no_missing
from plait.data.processors.text import as_text, train_word_vocab, word_tokenizer
from plait.errors import ConfigError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
TOKENIZERS = ("word", "bpe")


def bpe_tokenizer(lowercase: bool) -> Tokenizer:
    """An untrained byte-level BPE whose normalised text is what it decodes to: NFKC,
    optional lower-casing, runs of whitespace as one space, no space at either end."""
    tokenizer = Tokenizer(BPE(unk_token=SPECIALS[UNK]))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    steps += [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_bpe(texts: list[str], lowercase: bool, vocab_size: int, min_frequency: int) -> Tokenizer:
    """BPE sized by the data: merging stops once no pair of pieces occurs `min_frequency`
    times, so a word seen that often becomes one token and a rarer one is spelled from
    pieces shared with other words (its own token would get too few examples to learn).
    300 Flickr captions get about 430 tokens, 4k captions about 1.8k (at 5); `vocab_size`
    only caps it. BPE rather than Unigram for this rule: Unigram needs a vocabulary size
    guessed up front, which for a few hundred short targets is mostly a guess. Byte-level
    rather than Metaspace pre-tokenizing: punctuation stays apart ("dog." shares "Ġdog"
    with "dog"), which Metaspace would merge into word-plus-comma tokens. Only the bytes
    seen in training enter the alphabet, so the decoder's output holds no never-trained
    byte tokens; an unseen character is [UNK]."""
    tokenizer = bpe_tokenizer(lowercase)
    trainer = BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


class TextTarget(TargetProcessor):
    """Strings → (N, L) int64: [BOS] tokens… [EOS] [PAD]…; `decode` inverts it.

    The decoded text is the target's normalised form (lower-cased by default), which is
    what BLEU, chrF and WER compare predictions against: with `bpe` natural text with
    single spaces ("a dog runs."), with `word` words and punctuation apart ("a dog runs .").
    """

    kind = "text"

    def __init__(
        self,
        lowercase: bool = True,
        tokenizer: str = "bpe",
        vocab_size: int = 10000,
        min_frequency: int = 5,
        max_length: int = 64,
        length_percentile: float = 99.0,
    ) -> None:
        self.lowercase = lowercase
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        # In tokens: a subword cap of 64 reaches about as many words as 48 whole words.
        self.max_length = max_length
        self.length_percentile = length_percentile
        self._tokenizer: Tokenizer | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        # Runs written before subwords saved no `tokenizer`: their vocabulary is words.
        params = {"tokenizer": "word", **state["params"]}
        if params["tokenizer"] not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {params['tokenizer']!r}")
        obj = super().from_state({**state, "params": params})
        obj._tokenizer = obj._load()  # now: a damaged tokenizer is a load error, not a predict one
        return obj

    @property
    def fitted_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = self._load()
        return self._tokenizer

    def _load(self) -> Tokenizer:
        self.check_fitted()
        if self.tokenizer == "word":
            return word_tokenizer(self.lowercase, self.vocab_)
        return _parse(self.tokenizer_)

    @property
    def num_classes(self) -> int:
        # The decoder's output size.
        return len(self.vocab_) if self.tokenizer == "word" else self.fitted_tokenizer.get_vocab_size()

    def fit(self, values: pd.Series, column: str = "label") -> TextTarget:
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(
                f"text target {column!r}: tokenizer must be one of {', '.join(TOKENIZERS)}, "
                f"got {self.tokenizer!r}"
            )
        check_no_missing(values, column)
        texts = [as_text(v) for v in values.tolist() if not is_empty(v)]
        size, rare = self.vocab_size, self.min_frequency
        if self.tokenizer == "word":
            self.vocab_ = train_word_vocab(texts, self.lowercase, size, rare, SPECIALS)
        else:
            self.tokenizer_ = train_bpe(texts, self.lowercase, size, rare).to_str()
        self._tokenizer = self._load()
        lengths = [len(e.ids) for e in self.fitted_tokenizer.encode_batch(texts)] or [1]
        self.max_length_ = max(
            1, min(self.max_length, math.ceil(np.percentile(lengths, self.length_percentile)))
        )
        return self

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        self.check_fitted()
        check_no_missing(values, column)
        out = np.full((len(values), self.max_length_ + 2), PAD, dtype=np.int64)
        encodings = self.fitted_tokenizer.encode_batch([as_text(v) for v in values.tolist()])
        for row, encoding in enumerate(encodings):
            ids = [BOS, *encoding.ids[: self.max_length_], EOS]
            out[row, : len(ids)] = ids
        return torch.from_numpy(out)

    def decode(self, ids: Tensor) -> list[str]:
        """(N, L) ids → strings, stopping at [EOS] and dropping special tokens."""
        rows = [_until_eos(row) for row in ids.tolist()]
        if self.tokenizer == "word":
            return [" ".join(self.vocab_[i] for i in row) for row in rows]
        # Byte-level decoding keeps the space added before the first word.
        return [text.strip() for text in self.fitted_tokenizer.decode_batch(rows)]

    def normalise(self, values: pd.Series) -> list[str]:
        """Reference texts in the form predictions decode to (lower-cased; `word`: words
        and punctuation apart, rejoined with spaces); unknown words are kept."""
        tok = self.fitted_tokenizer
        texts = [tok.normalizer.normalize_str(as_text(v)) for v in values.tolist()]
        if self.tokenizer == "word":
            return [" ".join(w for w, _ in tok.pre_tokenizer.pre_tokenize_str(t)) for t in texts]
        return texts

    def head_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": self.num_classes, "max_length": self.max_length_ + 2}


def _until_eos(row: list[int]) -> list[int]:
    """The ids before the first [EOS], special ones ([PAD], [UNK], [BOS]) dropped."""
    end = row.index(EOS) if EOS in row else len(row)
    return [i for i in row[:end] if i > EOS]


def _parse(saved: str) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_str(saved)
    except Exception as err:  # tokenizers raises a bare Exception on bad JSON
        raise ValueError(f"its saved tokenizer does not parse ({err})") from None
    # Target text is data: "[EOS]" in a caption is five characters, never the end token.
    tokenizer.encode_special_tokens = True
    return tokenizer

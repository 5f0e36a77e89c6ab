"""Text targets (captioning, speech-to-text, translation): a word-level vocabulary
fitted on the training targets with `tokenizers`, and decoding back to strings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer
from torch import Tensor

from plait.data.processors.base import is_empty
from plait.data.processors.targets import TargetProcessor, check_no_missing
from plait.data.processors.text import as_text, train_word_vocab, word_tokenizer

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]


class TextTarget(TargetProcessor):
    """Strings → (N, L) int64: [BOS] words… [EOS] [PAD]…; `decode` inverts it.

    Words and punctuation are tokens (lower-cased by default), so the decoded text is
    the normalised target ("a dog runs ." for "A dog runs."), which is what BLEU and
    WER compare against too.
    """

    kind = "text"

    def __init__(
        self,
        lowercase: bool = True,
        vocab_size: int = 10000,
        min_frequency: int = 1,
        max_length: int = 48,
        length_percentile: float = 99.0,
    ) -> None:
        self.lowercase = lowercase
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.max_length = max_length
        self.length_percentile = length_percentile
        self._tokenizer: Tokenizer | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        self.check_fitted()
        if self._tokenizer is None:
            self._tokenizer = word_tokenizer(self.lowercase, self.vocab_)
        return self._tokenizer

    @property
    def num_classes(self) -> int:
        return len(self.vocab_)  # the decoder's output size

    def fit(self, values: pd.Series, column: str = "label") -> TextTarget:
        check_no_missing(values, column)
        texts = [as_text(v) for v in values.tolist() if not is_empty(v)]
        self.vocab_ = train_word_vocab(texts, self.lowercase, self.vocab_size, self.min_frequency, SPECIALS)
        self._tokenizer = None
        lengths = [len(e.ids) for e in self.tokenizer.encode_batch(texts)] or [1]
        self.max_length_ = max(
            1, min(self.max_length, math.ceil(np.percentile(lengths, self.length_percentile)))
        )
        return self

    def transform(self, values: pd.Series, column: str = "label") -> Tensor:
        self.check_fitted()
        check_no_missing(values, column)
        out = np.full((len(values), self.max_length_ + 2), PAD, dtype=np.int64)
        for row, encoding in enumerate(self.tokenizer.encode_batch([as_text(v) for v in values.tolist()])):
            ids = [BOS, *encoding.ids[: self.max_length_], EOS]
            out[row, : len(ids)] = ids
        return torch.from_numpy(out)

    def decode(self, ids: Tensor) -> list[str]:
        """(N, L) ids → strings, stopping at [EOS] and dropping special tokens."""
        texts = []
        for row in ids.tolist():
            words = []
            for i in row:
                if i == EOS:
                    break
                if i > EOS:
                    words.append(self.vocab_[i])
            texts.append(" ".join(words))
        return texts

    def normalise(self, values: pd.Series) -> list[str]:
        """Reference texts split into tokens the way predictions are (lower-cased, words
        and punctuation apart), rejoined with spaces; unknown words are kept."""
        tok = self.tokenizer
        return [
            " ".join(
                w for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(as_text(v)))
            )
            for v in values.tolist()
        ]

    def head_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab_), "max_length": self.max_length_ + 2}

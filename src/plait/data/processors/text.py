"""Text processor: a word-level vocabulary trained on the training text with `tokenizers`."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from plait.data.processors.base import Encoded, InputProcessor, is_empty
from plait.errors import ConfigError

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1
# A short English stop-word list (function words only). Written out because
# `tokenizers` has none and pulling in NLTK/spaCy for a word list is not worth it.
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be been but by for from has have he her his i in is it its of on "
    "or our she so that the their them they this to was we were will with you your".split()
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def as_text(value: Any) -> str:
    """A cell as text the tokenizer accepts: lone surrogates (left by decoding with
    errors="surrogateescape", not valid in UTF-8) become U+FFFD."""
    text = str(value)
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def word_tokenizer(lowercase: bool, vocab: list[str] | None = None) -> Tokenizer:
    """A word-level tokenizer: NFKC, optional lower-casing, words and punctuation apart;
    `vocab` (position = id) for a fitted one, None for one to train."""
    model = (
        WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=UNK) if vocab else WordLevel(unk_token=UNK)
    )
    tokenizer = Tokenizer(model)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def train_word_vocab(
    texts: list[str], lowercase: bool, vocab_size: int, min_frequency: int, specials: list[str]
) -> list[str]:
    """The vocabulary (position = id, `specials` first) trained on `texts`."""
    tokenizer = word_tokenizer(lowercase)
    trainer = WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return [w for w, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]


class TextProcessor(InputProcessor):
    """Strings → token ids (N, max_length) int64, 0 = padding, 1 = unknown word."""

    kind = "text"

    def __init__(
        self,
        lowercase: bool = True,
        stop_words: str | list[str] | None = None,
        vocab_size: int = 30000,
        min_frequency: int = 1,
        max_length: int = 256,
        length_percentile: float = 99.0,
    ) -> None:
        self.lowercase = lowercase
        self.stop_words = stop_words
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.max_length = max_length
        self.length_percentile = length_percentile
        self._tokenizer: Tokenizer | None = None

    def _stop_set(self) -> frozenset[str]:
        if self.stop_words is None:
            return frozenset()
        if self.stop_words == "english":
            return ENGLISH_STOP_WORDS
        if isinstance(self.stop_words, list):
            return frozenset(w.lower() if self.lowercase else w for w in self.stop_words)
        raise ConfigError(f"stop_words must be 'english', a list of words or null, got {self.stop_words!r}")

    @property
    def tokenizer(self) -> Tokenizer:
        self.check_fitted()
        if self._tokenizer is None:  # rebuilt from the saved vocabulary after loading
            self._tokenizer = word_tokenizer(self.lowercase, self.vocab_)
        return self._tokenizer

    def fit(self, values: pd.Series, column: str = "text", on_bad_row: str = "error") -> TextProcessor:
        texts = [as_text(v) for v in values.tolist() if not is_empty(v)]
        self._stop_set()  # validate the option before the (slower) training
        # position = id; [PAD]=0, [UNK]=1
        self.vocab_ = train_word_vocab(texts, self.lowercase, self.vocab_size, self.min_frequency, [PAD, UNK])
        self._tokenizer = None
        lengths = [len(ids) for ids in self._ids(texts)] or [1]
        self.max_length_ = max(
            1, min(self.max_length, math.ceil(np.percentile(lengths, self.length_percentile)))
        )
        return self

    def _ids(self, texts: list[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        stop_ids = {self.tokenizer.token_to_id(w) for w in self._stop_set()} - {None}
        if not stop_ids:
            return [e.ids for e in encodings]
        return [[i for i in e.ids if i not in stop_ids] for e in encodings]

    def transform(self, values: pd.Series, column: str = "text", on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        present = [not is_empty(v) for v in values.tolist()]
        texts = [as_text(v) if p else "" for v, p in zip(values.tolist(), present, strict=False)]
        ids = np.zeros((len(texts), self.max_length_), dtype=np.int64)
        for row, seq in enumerate(self._ids(texts)):
            seq = seq[: self.max_length_]
            ids[row, : len(seq)] = seq
        return Encoded(torch.from_numpy(ids), torch.tensor(present, dtype=torch.bool))

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab_)}

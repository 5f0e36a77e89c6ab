import pandas as pd
import pytest
import torch

from plait.data.processors import TextProcessor
from plait.errors import ConfigError

TEXTS = pd.Series(["What shape is this?", "What COLOR is the shape?", "", None, "is it red"])


def test_fit_transform_ids_padding_and_presence():
    proc = TextProcessor().fit(TEXTS)
    assert proc.vocab_[:2] == ["[PAD]", "[UNK]"]
    assert "color" in proc.vocab_ and "COLOR" not in proc.vocab_  # lower-cased
    enc = proc.transform(TEXTS)
    assert enc.values.dtype == torch.int64 and enc.values.shape == (5, proc.max_length_)
    assert enc.present.tolist() == [True, True, False, False, True]
    assert enc.values[2].sum() == 0
    unknown = proc.transform(pd.Series(["purple shape"])).values[0]
    assert unknown[0] == 1 and unknown[1] == proc.vocab_.index("shape")


def test_max_length_from_percentile_and_cap():
    texts = pd.Series(["w " * n for n in range(1, 101)])
    assert TextProcessor(length_percentile=50).fit(texts).max_length_ == 51
    assert TextProcessor(max_length=8).fit(texts).max_length_ == 8


def test_stop_words_are_dropped():
    proc = TextProcessor(stop_words="english").fit(TEXTS)
    ids = proc.transform(pd.Series(["is the shape red"])).values[0]
    words = [proc.vocab_[i] for i in ids if i]
    assert words == ["shape", "red"]
    custom = TextProcessor(stop_words=["Shape"]).fit(TEXTS)
    assert [custom.vocab_[i] for i in custom.transform(pd.Series(["the shape"])).values[0] if i] == ["the"]
    with pytest.raises(ConfigError, match="stop_words"):
        TextProcessor(stop_words="klingon").fit(TEXTS)


def test_vocabulary_limits():
    texts = pd.Series(["a a a b b c"])
    assert TextProcessor(min_frequency=2).fit(texts).vocab_ == ["[PAD]", "[UNK]", "a", "b"]

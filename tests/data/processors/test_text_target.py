"""Text targets: tokenise with [BOS]/[EOS], decode back, reference normalisation."""

import pandas as pd
import pytest

from plait.data.processors.text_target import BOS, EOS, PAD, TextTarget
from plait.errors import DataError


def test_round_trip_lowercases_and_splits_punctuation():
    texts = pd.Series(["A dog runs.", "Two dogs play in the snow", "a dog"])
    proc = TextTarget().fit(texts)
    ids = proc.transform(texts)
    assert ids[:, 0].eq(BOS).all()
    assert ids[2].tolist()[:4] == [BOS, proc.vocab_.index("a"), proc.vocab_.index("dog"), EOS]
    assert ids[2, 4:].eq(PAD).all()
    assert proc.decode(ids) == ["a dog runs .", "two dogs play in the snow", "a dog"]
    assert proc.normalise(texts) == proc.decode(ids)


def test_unknown_words_decode_to_nothing_but_stay_in_references():
    proc = TextTarget().fit(pd.Series(["a cat"]))
    ids = proc.transform(pd.Series(["a zebra"]))
    assert proc.decode(ids) == ["a"]
    assert proc.normalise(pd.Series(["A zebra!"])) == ["a zebra !"]


def test_long_targets_are_truncated_to_the_fitted_length():
    proc = TextTarget(max_length=3).fit(pd.Series(["one two three four five"]))
    ids = proc.transform(pd.Series(["one two three four five"]))
    assert ids.shape == (1, 5) and proc.decode(ids) == ["one two three"]
    assert proc.head_kwargs() == {"vocab_size": len(proc.vocab_), "max_length": 5}


def test_state_round_trip():
    proc = TextTarget().fit(pd.Series(["red square", "blue circle"]))
    again = TextTarget.from_state(proc.state())
    assert again.decode(proc.transform(pd.Series(["blue square"]))) == ["blue square"]


def test_empty_targets_are_refused():
    with pytest.raises(DataError, match="label column 'caption' is empty in 1 of 2 rows"):
        TextTarget().fit(pd.Series(["a", None]), "caption")

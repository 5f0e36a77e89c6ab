"""Text targets: tokenise with [BOS]/[EOS], decode back, reference normalisation; the
subword (BPE) default and the word vocabulary of runs written before it."""

import json

import pandas as pd
import pytest

from plait.data.processors.text_target import BOS, EOS, PAD, UNK, TextTarget
from plait.errors import ConfigError, DataError

# Every word seen often enough (min_frequency 5 by default) to become one token.
PETS = pd.Series(["a red dog", "a blue cat", "the red cat", "the blue dog", "A dog runs."] * 5)


# -- subwords (the default) ---------------------------------------------------------
def test_a_word_never_seen_in_training_is_written_from_pieces():
    proc = TextTarget().fit(PETS)
    assert proc.tokenizer == "bpe" and "redcat" not in " ".join(PETS)
    unseen = pd.Series(["a redcat", "The bluedog"])
    ids = proc.transform(unseen)
    assert not ids.eq(UNK).any()
    assert proc.decode(ids) == ["a redcat", "the bluedog"]
    pieces = proc.fitted_tokenizer.encode("a redcat").tokens
    assert pieces == ["Ġa", "Ġred", "cat"]  # "cat" and " red" learned from other words


def test_training_targets_round_trip_as_natural_text():
    texts = pd.Series(["A dog runs.", "Two  dogs play\tin the snow ", "a dog, don't!"])
    proc = TextTarget(min_frequency=1).fit(texts)
    ids = proc.transform(texts)
    assert ids[:, 0].eq(BOS).all() and ids.eq(EOS).sum() == 3
    expected = ["a dog runs.", "two dogs play in the snow", "a dog, don't!"]
    assert proc.decode(ids) == expected
    assert proc.normalise(texts) == expected  # references compare like with like
    assert TextTarget(lowercase=False, min_frequency=1).fit(texts).normalise(texts)[0] == "A dog runs."


def test_rare_words_are_spelled_and_frequent_ones_are_one_token():
    proc = TextTarget().fit(pd.Series(["a zebra", *["a dog"] * 10]))
    assert proc.fitted_tokenizer.encode("a dog").tokens == ["Ġa", "Ġdog"]
    assert proc.fitted_tokenizer.encode("zebra").tokens == ["Ġ", *"zebra"]  # seen once: spelled
    assert proc.num_classes == proc.head_kwargs()["vocab_size"] < 20


def test_an_unseen_character_is_dropped_in_predictions_but_kept_in_references():
    proc = TextTarget().fit(PETS)
    assert proc.decode(proc.transform(pd.Series(["a dog?"]))) == ["a dog"]
    assert proc.normalise(pd.Series(["A dog?"])) == ["a dog?"]


def test_special_token_names_in_the_text_are_just_text():
    proc = TextTarget(min_frequency=1).fit(pd.Series(["say [EOS] now", "a [PAD]"]))
    ids = proc.transform(pd.Series(["say [EOS] now"]))
    assert ids[0].eq(EOS).sum() == 1 and proc.decode(ids) == ["say [eos] now"]


def test_long_targets_are_truncated_to_the_fitted_length():
    proc = TextTarget(max_length=3, min_frequency=1).fit(pd.Series(["one two three four five"]))
    ids = proc.transform(pd.Series(["one two three four five"]))
    assert ids.shape == (1, 5) and proc.decode(ids) == ["one two three"]
    assert proc.head_kwargs() == {"vocab_size": proc.num_classes, "max_length": 5}


def test_the_fitted_length_is_a_high_percentile_in_subword_tokens():
    texts = pd.Series(["a dog"] * 99 + ["a dog " * 30])
    proc = TextTarget(length_percentile=95.0).fit(texts)
    assert proc.max_length_ == 2  # the one long outlier does not set it


def test_state_is_plain_json_and_round_trips():
    proc = TextTarget().fit(PETS)
    state = json.loads(json.dumps(proc.state()))
    assert state["params"]["tokenizer"] == "bpe" and set(state["fitted"]) == {"tokenizer_", "max_length_"}
    again = TextTarget.from_state(state)
    ids = proc.transform(pd.Series(["the redcat"]))
    assert again.decode(ids) == proc.decode(ids) == ["the redcat"]
    assert again.num_classes == proc.num_classes


def test_a_damaged_saved_tokenizer_fails_at_load():
    state = TextTarget().fit(PETS).state()
    state["fitted"]["tokenizer_"] = "{not json"
    with pytest.raises(ValueError, match="saved tokenizer does not parse"):
        TextTarget.from_state(state)


def test_an_unknown_tokenizer_is_refused():
    with pytest.raises(ConfigError, match="tokenizer must be one of word, bpe, got 'char'"):
        TextTarget(tokenizer="char").fit(PETS, "caption")


# -- the word vocabulary (tokenizer: word, and every run written before subwords) ----
def test_word_round_trip_lowercases_and_splits_punctuation():
    texts = pd.Series(["A dog runs.", "Two dogs play in the snow", "a dog"])
    proc = TextTarget(tokenizer="word", min_frequency=1).fit(texts)
    ids = proc.transform(texts)
    assert ids[:, 0].eq(BOS).all()
    assert ids[2].tolist()[:4] == [BOS, proc.vocab_.index("a"), proc.vocab_.index("dog"), EOS]
    assert ids[2, 4:].eq(PAD).all()
    assert proc.decode(ids) == ["a dog runs .", "two dogs play in the snow", "a dog"]
    assert proc.normalise(texts) == proc.decode(ids)


def test_word_unknown_words_decode_to_nothing_but_stay_in_references():
    proc = TextTarget(tokenizer="word", min_frequency=1).fit(pd.Series(["a cat"]))
    ids = proc.transform(pd.Series(["a zebra"]))
    assert proc.decode(ids) == ["a"]
    assert proc.normalise(pd.Series(["A zebra!"])) == ["a zebra !"]


# processors.json of a text target as runs wrote it before subwords: no `tokenizer`.
OLD_STATE = {
    "kind": "text",
    "params": {
        "lowercase": True,
        "vocab_size": 10000,
        "min_frequency": 1,
        "max_length": 48,
        "length_percentile": 99.0,
    },
    "fitted": {
        "vocab_": ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "a", "dog", ".", "runs", "the"],
        "max_length_": 4,
    },
}


def test_a_word_state_written_before_subwords_loads_and_decodes_as_before():
    proc = TextTarget.from_state(OLD_STATE)
    assert proc.tokenizer == "word" and proc.num_classes == 9
    assert proc.head_kwargs() == {"vocab_size": 9, "max_length": 6}
    ids = proc.transform(pd.Series(["The dog runs.", "a cat"]))
    assert ids.tolist() == [[BOS, 8, 5, 7, 6, EOS], [BOS, 4, UNK, EOS, PAD, PAD]]
    assert proc.decode(ids) == ["the dog runs .", "a"]
    assert proc.normalise(pd.Series(["The dog runs."])) == ["the dog runs ."]
    assert proc.state()["params"]["tokenizer"] == "word"  # saved again, it stays words


def test_empty_targets_are_refused():
    with pytest.raises(DataError, match="label column 'caption' is empty in 1 of 2 rows"):
        TextTarget().fit(pd.Series(["a", None]), "caption")

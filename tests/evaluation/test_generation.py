"""Generation metrics: references grouped by inputs, BLEU/chrF, exact match, WER."""

import pytest

from plait.evaluation.generation import references, text_metrics


def test_references_group_rows_with_the_same_inputs():
    refs = references(["a", "b", "c"], [("img1",), ("img2",), ("img1",)])
    assert refs == [["a", "c"], ["b"], ["c", "a"]]


def test_metrics_on_known_cases():
    hyps = ["a dog runs on the grass", "a cat sleeps"]
    refs = [["a dog runs on the grass", "a brown dog"], ["a black cat sleeps now"]]
    m = text_metrics(hyps, refs)
    assert m["exact_match"] == 0.5
    assert m["wer"] == pytest.approx(2 / 11)  # 2 deletions over 6 + 5 reference words
    assert 0 < m["bleu"] < 100 and 0 < m["chrf"] < 100
    perfect = text_metrics(["the same four words"], [["the same four words"]])
    assert perfect["bleu"] == pytest.approx(100) and perfect["wer"] == 0

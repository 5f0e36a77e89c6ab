"""Greedy ensemble selection (Caruana 2004) on hand-made validation predictions."""

import numpy as np
import pytest

from plait.ensemble.selection import bagged_weights, greedy_weights, log_loss


def test_two_halves_that_err_on_different_rows_are_averaged():
    """Each candidate is right on half the rows and unsure on the other half: their
    average beats either, so both get weight; a useless third gets none."""
    y = np.array([0, 0, 1, 1])
    a = np.array([0.0, 0.5, 1.0, 0.5])  # right on rows 0 and 2
    b = np.array([0.5, 0.0, 0.5, 1.0])  # right on rows 1 and 3
    noise = np.array([0.9, 0.9, 0.1, 0.1])  # wrong everywhere
    weights = greedy_weights({"a": a, "b": b, "noise": noise}, y, log_loss("numeric"), rounds=10)
    assert weights == {"a": 0.5, "b": 0.5}


def test_the_best_single_candidate_wins_when_mixing_does_not_help():
    y = np.array([0, 1, 1, 0])
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.8, 0.2]])
    bad = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.3, 0.7]])
    loss = log_loss("category")
    weights = greedy_weights({"bad": bad, "good": good}, y, loss)
    assert weights == {"good": 1.0}
    mixed = sum(w * {"bad": bad, "good": good}[n] for n, w in weights.items())
    assert loss(mixed, y) == pytest.approx(loss(good, y))  # never above the best single one


def test_weights_are_counts_over_rounds_and_sum_to_one():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    low, high = y - 1.0, y + 3.0  # the mean closest to y weights low 3 : high 1
    weights = greedy_weights({"low": low, "high": high}, y, log_loss("numeric"), rounds=8)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights == {"low": 0.75, "high": 0.25}


def test_binary_loss_is_cross_entropy():
    y = np.array([1.0, 0.0])
    assert log_loss("binary")(np.array([0.5, 0.5]), y) == pytest.approx(np.log(2))


def test_bagged_selection_keeps_the_best_single_candidate_unless_the_mix_beats_it():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    good = y + rng.normal(0, 0.3, 200)
    other = y + rng.normal(0, 0.3, 200)  # as good, with independent errors: mixing halves them
    weights = bagged_weights({"good": good, "other": other}, y, log_loss("numeric"), seed=0)
    assert set(weights) == {"good", "other"} and sum(weights.values()) == pytest.approx(1)
    assert 0.3 < weights["good"] < 0.7
    useless = y + 5 * (good - y)  # the same errors, five times larger: any weight on it hurts
    assert bagged_weights({"good": good, "useless": useless}, y, log_loss("numeric")) == {"good": 1.0}

"""Decision thresholds maximising a metric, on constructed cases with known answers:
per label for multi-label targets, the positive class's for binary ones."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from plait.data.processors import BinaryTarget, CategoryTarget
from plait.evaluation.thresholds import best_threshold, decision_thresholds, tune_thresholds

# 4 rows × 3 labels; the same case as test_metrics.py.
PROBS = torch.tensor([[0.9, 0.6, 0.2], [0.8, 0.7, 0.4], [0.3, 0.4, 0.7], [0.2, 0.1, 0.1]])
TARGETS = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 0]])


def test_best_threshold_per_label():
    # Label 0: positives 0.9, 0.8, negatives 0.3, 0.2 → cut between 0.8 and 0.3: F1 = 1.
    # Label 1: ranked 0.7+, 0.6-, 0.4+, 0.1-; calling the top k positive gives F1
    #   k=1: 2·1/(1+2) = 2/3, k=2: 2·1/(2+2) = 1/2, k=3: 2·2/(3+2) = 4/5, k=4: 4/6 → cut 0.4 | 0.1.
    # Label 2: the one positive 0.7 is the highest → cut between 0.7 and 0.4: F1 = 1.
    assert tune_thresholds(PROBS, TARGETS) == pytest.approx([0.55, 0.25, 0.55])


def test_ties_prefer_the_threshold_closest_to_a_half_and_no_positives_keep_it():
    probs = torch.tensor([[0.9, 0.9], [0.7, 0.6], [0.6, 0.3], [0.2, 0.1]])
    targets = torch.tensor([[1, 0], [0, 0], [0, 0], [1, 0]])
    # Label 0: calling the top row positive gives F1 2·1/(1+2) = 2/3 (cut 0.8), calling
    # all four 2·2/(4+2) = 2/3 too (cut 0.1); 0.8 is nearer 0.5. Label 1 has no positive.
    assert tune_thresholds(probs, targets) == pytest.approx([0.8, 0.5])
    # The positives 0.99 and 0.9 are separated from 0.1 by the midpoint cut at 0.5.
    assert tune_thresholds(
        torch.tensor([[0.99], [0.9], [0.1]]), torch.tensor([[1], [1], [0]])
    ) == pytest.approx([0.5])
    # Every row positive: the best cut calls all of them, below the lowest probability.
    assert tune_thresholds(torch.tensor([[0.3], [0.1]]), torch.tensor([[1], [1]])) == pytest.approx([0.05])


def test_repeated_probabilities_are_cut_together():
    probs = torch.tensor([[0.8], [0.6], [0.6], [0.2]])
    targets = torch.tensor([[1], [1], [0], [0]])
    # 0.6 is both a positive and a negative: the cuts are 0.7 (F1 2/3) or 0.4 (F1 4/5).
    assert tune_thresholds(probs, targets) == pytest.approx([0.4])


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"same \(N, C\) shape, got \(4, 3\) and \(4, 2\)"):
        tune_thresholds(PROBS, TARGETS[:, :2])


# A binary target's threshold: 6 rows ranked 0.9+, 0.8+, 0.7-, 0.6+, 0.4-, 0.2-.
BINARY_P = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.2])
BINARY_Y = np.array([1, 1, 0, 1, 0, 0], dtype=bool)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # Calling the top k positive, k = 0..6: correct rows 3, 4, 5, 4, 5, 4, 3. The best,
        # k = 2 and k = 4, cut at 0.75 or 0.5; 0.5 is the nearer to a half.
        ("accuracy", 0.5),
        # F1 of the positives 2·tp/(k + 3): 0, 2/4, 4/5, 4/6, 6/7, 6/8, 6/9 → k = 4.
        ("f1", 0.5),
        # Mean recall: k = 2 gives (2/3 + 3/3)/2 = 5/6, k = 4 (3/3 + 2/3)/2 = 5/6: a tie, 0.5.
        ("balanced_accuracy", 0.5),
        # Macro F1: k = 2 (4/5 + 6/7)/2 ≈ 0.829, k = 4 (6/7 + 4/5)/2 the same: 0.5.
        ("macro_f1", 0.5),
    ],
)
def test_binary_threshold_per_metric(metric, expected):
    assert best_threshold(BINARY_P, BINARY_Y, metric) == pytest.approx(expected)


def test_the_metric_decides_where_the_cut_goes():
    # Ten rows, 8 negatives: 0.65+, 0.6+ on top, then 0.55-, and the negatives below.
    probs = np.array([0.65, 0.6, 0.55, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15])
    positive = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert best_threshold(probs, positive, "accuracy") == pytest.approx(0.575)  # all rows right
    # Imbalanced the other way: 0.3 and 0.2 are positives under 0.5, 0.1 is not.
    probs = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    positive = np.array([1, 1, 1, 1, 1, 0], dtype=bool)
    for metric in ("accuracy", "f1", "macro_f1", "balanced_accuracy"):
        assert best_threshold(probs, positive, metric) == pytest.approx(0.15)  # every positive found
    # No row positive is a cut too: above the largest probability.
    assert best_threshold(np.array([0.9, 0.8]), np.array([0, 0], dtype=bool), "accuracy") == 0.5
    probs, positive = np.array([0.7, 0.6, 0.1]), np.array([0, 0, 1], dtype=bool)
    assert best_threshold(probs, positive, "accuracy") == pytest.approx(0.85)  # calls none: 2 of 3


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown threshold metric 'auc'; expected one of accuracy"):
        best_threshold(BINARY_P, BINARY_Y, "auc")


def test_decision_thresholds_of_each_target_kind():
    binary = BinaryTarget().fit(pd.Series(["no", "yes", "no"]))
    assert decision_thresholds(binary) == [0.5]
    binary.threshold_ = 0.3
    assert decision_thresholds(binary) == [0.3]
    assert binary.decide(torch.tensor([0.2, 0.3, 0.9])) == ["no", "yes", "yes"]
    restored = BinaryTarget.from_state(json.loads(json.dumps(binary.state())))
    assert restored.threshold_ == 0.3
    old = binary.state()
    del old["fitted"]["threshold_"]  # a run folder saved before thresholds were tuned
    assert BinaryTarget.from_state(old).threshold_ == 0.5
    assert decision_thresholds(CategoryTarget().fit(pd.Series(["a", "b", "c"]))) is None


def test_bagged_threshold_is_seeded_and_keeps_a_clear_cut():
    # Separable rows: every resample agrees with the whole, so bagging changes nothing.
    probs = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    positive = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    assert best_threshold(probs, positive, "accuracy", bags=50) == pytest.approx(0.5)
    # Noisy rows: a threshold among the candidate cuts, the same for the same seed.
    rng = np.random.default_rng(0)
    probs, positive = rng.uniform(size=300), rng.uniform(size=300) < 0.6
    cuts = {best_threshold(probs, positive, "macro_f1", bags=50, seed=s) for s in (1, 1, 2)}
    assert 1 <= len(cuts) <= 2 and all(0 < c < 1 for c in cuts)
    once = best_threshold(probs, positive, "macro_f1", bags=50, seed=1)
    assert once == best_threshold(probs, positive, "macro_f1", bags=50, seed=1)

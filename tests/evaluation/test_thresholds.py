"""Per-label thresholds maximising F1 on a constructed case with a known answer."""

import pytest
import torch

from plait.evaluation.thresholds import tune_thresholds

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

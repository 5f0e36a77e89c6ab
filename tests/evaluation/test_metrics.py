import pytest
import torch

from plait.evaluation.metrics import TaskMetrics, flatten


def test_classification_metrics():
    m = TaskMetrics("category", 3)
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    m.update(probs, torch.tensor([0, 1, 2, 2]))
    values = m.compute()
    assert values["accuracy"] == pytest.approx(0.75)
    assert values["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_binary_metrics_include_roc_auc():
    m = TaskMetrics("binary")
    m.update(torch.tensor([0.9, 0.2, 0.6, 0.4]), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    values = m.compute()
    assert set(values) == {"accuracy", "macro_f1", "balanced_accuracy", "f1", "roc_auc"}
    assert values["accuracy"] == pytest.approx(0.5)
    assert values["roc_auc"] == pytest.approx(0.75)


def test_binary_decisions_follow_the_threshold():
    probs, truth = torch.tensor([0.9, 0.2, 0.6, 0.4, 0.35]), torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    m = TaskMetrics("binary", thresholds=[0.3])
    m.update(probs, truth)
    values = m.compute()
    # At 0.3 the calls are 1, 0, 1, 1, 1: every positive found, one false alarm (0.6).
    assert values["accuracy"] == pytest.approx(4 / 5)
    assert values["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert values["balanced_accuracy"] == pytest.approx((1 + 1 / 2) / 2)  # recalls 3/3 and 1/2
    assert values["macro_f1"] == pytest.approx((6 / 7 + 2 / 3) / 2)  # negatives: tp 1, fn 1
    assert values["roc_auc"] == TaskMetrics("binary").auroc(probs, truth.long())  # AUC ignores it
    at_half = TaskMetrics("binary")
    at_half.update(probs, truth)
    assert at_half.compute()["accuracy"] == pytest.approx(2 / 5)  # calls 1, 0, 1, 0, 0


def test_regression_metrics_and_reset():
    m = TaskMetrics("numeric")
    m.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0]))
    values = m.compute()
    assert values["mae"] == pytest.approx(2 / 3)
    assert values["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert values["r2"] == pytest.approx(1 - 4 / (26 / 3))  # SS_res 4, SS_tot 26/3
    m.reset()
    m.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    assert m.compute()["rmse"] == 0


def test_flatten_names():
    assert flatten({"y": {"accuracy": 1.0}}) == {"accuracy": 1.0}
    assert flatten({"a": {"rmse": 1.0}, "b": {"accuracy": 0.5}}) == {"a/rmse": 1.0, "b/accuracy": 0.5}


# 4 rows × 3 labels (also tests/evaluation/test_thresholds.py).
ML_PROBS = torch.tensor([[0.9, 0.6, 0.2], [0.8, 0.7, 0.4], [0.3, 0.4, 0.7], [0.2, 0.1, 0.1]])
ML_TARGETS = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 0]])


def test_multilabel_metrics_at_one_half():
    m = TaskMetrics("multilabel", 3)
    m.update(ML_PROBS, ML_TARGETS)
    values = m.compute()
    assert set(values) == {"micro_f1", "macro_f1", "mean_ap", "subset_accuracy"}
    # Called at ≥ 0.5: rows {0, 1}, {0, 1}, {2}, {}; true {0}, {0, 1}, {1, 2}, {}.
    # Label 0: tp 2 → F1 1. Label 1: tp 1, fp 1, fn 1 → F1 2/4. Label 2: tp 1 → F1 1.
    # Micro: tp 4, fp 1, fn 1 → 8/10. Macro: (1 + 1/2 + 1)/3 = 5/6.
    assert values["micro_f1"] == pytest.approx(0.8)
    assert values["macro_f1"] == pytest.approx(5 / 6)
    assert values["subset_accuracy"] == pytest.approx(0.5)  # rows 1 and 3 exactly right
    # AP: label 0 ranks both positives first → 1; label 1 ranks 0.7+, 0.6-, 0.4+ →
    # (1/1 + 2/3)/2 = 5/6; label 2 → 1. Mean (1 + 5/6 + 1)/3 = 17/18.
    assert values["mean_ap"] == pytest.approx(17 / 18)


def test_multilabel_metrics_use_per_label_thresholds():
    m = TaskMetrics("multilabel", 3, thresholds=[0.55, 0.25, 0.55])
    m.update(ML_PROBS[:2], ML_TARGETS[:2])  # in two batches
    m.update(ML_PROBS[2:], ML_TARGETS[2:])
    values = m.compute()
    # Label 1 is now called for rows 0, 1, 2: tp 2, fp 1 → F1 4/5; labels 0 and 2 stay 1.
    # Micro: tp 5, fp 1, fn 0 → 10/11. Rows 1, 2, 3 exactly right.
    assert values["macro_f1"] == pytest.approx((1 + 0.8 + 1) / 3)
    assert values["micro_f1"] == pytest.approx(10 / 11)
    assert values["subset_accuracy"] == pytest.approx(0.75)
    assert values["mean_ap"] == pytest.approx(17 / 18)  # thresholds do not change rankings
    m.reset()
    m.update(ML_PROBS[:1], ML_TARGETS[:1])
    assert m.compute()["subset_accuracy"] == 0  # row 0 calls label 1 at 0.6 ≥ 0.25


def test_multilabel_label_without_positives():
    # Label 1 is never positive: its AP is undefined and left out of mean_ap; its F1 is 1
    # while it is never called, 0 once it is.
    targets = torch.tensor([[1.0, 0], [0, 0]])
    m = TaskMetrics("multilabel", 2)
    m.update(torch.tensor([[0.9, 0.1], [0.2, 0.3]]), targets)
    perfect = {"micro_f1": 1.0, "macro_f1": 1.0, "mean_ap": 1.0, "subset_accuracy": 1.0}
    assert m.compute() == pytest.approx(perfect)
    m = TaskMetrics("multilabel", 2)
    m.update(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), targets)
    values = m.compute()
    assert values["macro_f1"] == pytest.approx(0.5) and values["mean_ap"] == pytest.approx(1.0)
    assert values["micro_f1"] == pytest.approx(2 / 3)  # tp 1, fp 1


def test_multilabel_thresholds_must_match_the_labels():
    with pytest.raises(ValueError, match=r"expected 3 multilabel thresholds, got shape \(2,\)"):
        TaskMetrics("multilabel", 3, thresholds=[0.5, 0.5])

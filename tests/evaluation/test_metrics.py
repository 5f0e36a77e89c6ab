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
    assert set(values) == {"accuracy", "macro_f1", "roc_auc"}
    assert values["accuracy"] == pytest.approx(0.5)
    assert values["roc_auc"] == pytest.approx(0.75)


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

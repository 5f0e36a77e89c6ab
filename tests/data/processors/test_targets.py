import pandas as pd
import pytest
import torch

from plait.data.processors import BinaryTarget, CategoryTarget, NumericTarget
from plait.errors import DataError


def test_category_target_classes_and_ids():
    proc = CategoryTarget().fit(pd.Series(["10", "2", "cat", "2"]))
    assert proc.classes_ == ["2", "10", "cat"]  # numbers sort numerically
    assert proc.transform(pd.Series(["cat", "2"])).tolist() == [2, 0]
    assert proc.head_kwargs() == {"num_classes": 3}
    with pytest.raises(DataError, match="values not seen in training: 'dog'"):
        proc.transform(pd.Series(["dog"]), "label")


def test_nan_labels_are_counted():
    with pytest.raises(DataError, match=r"label column 'y' is empty in 2 of 4 rows \(rows 2, 4\)"):
        CategoryTarget().fit(pd.Series(["a", None, "b", float("nan")]), "y")
    with pytest.raises(DataError, match="empty in 1 of 2 rows"):
        NumericTarget().fit(pd.Series([1.0, None]), "y")


def test_single_class_is_refused():
    with pytest.raises(DataError, match="single value"):
        CategoryTarget().fit(pd.Series(["a", "a"]), "y")


def test_binary_positive_class_is_the_second():
    proc = BinaryTarget().fit(pd.Series(["yes", "no", "yes"]))
    assert proc.classes_ == ["no", "yes"]
    assert proc.transform(pd.Series(["yes", "no"])).tolist() == [1.0, 0.0]
    with pytest.raises(DataError, match="binary but has 3 values"):
        BinaryTarget().fit(pd.Series(["a", "b", "c"]), "y")


def test_numeric_target_statistics():
    proc = NumericTarget().fit(pd.Series([1.0, 3.0]))
    assert (proc.mean_, proc.std_) == (2.0, 1.0)
    assert proc.head_kwargs() == {"target_mean": 2.0, "target_std": 1.0}
    assert torch.equal(proc.transform(pd.Series([4])), torch.tensor([4.0]))

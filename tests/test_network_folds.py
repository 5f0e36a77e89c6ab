"""The network's out-of-fold predictions (plait.network_folds): every training row
predicted by a network that never saw it, or none at all when the budget ends first."""

from __future__ import annotations

import time

import numpy as np
import pytest

from plait.config import as_config
from plait.data.prepare import table_datasets
from plait.data.schema import resolve_config
from plait.data.table import read_table
from plait.network_folds import _rows, fold_estimate, out_of_fold
from plait.train import build_system
from tests.conftest import make_table, tiny_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("folds")
    make_table(folder, rows=40).to_csv(folder / "t.csv", index=False)
    table = read_table(folder / "t.csv")
    cfg = resolve_config(table.frame, as_config(tiny_config()), ["colour"])
    processors, targets, datasets = table_datasets(cfg, table.frame, table.base_dir)
    return cfg, processors, targets, datasets["train"]


@pytest.mark.slow  # five trainings
def test_every_training_row_gets_a_prediction_from_a_network_without_it(prepared):
    cfg, processors, targets, train = prepared
    tc = cfg.trainer.model_copy(update={"epochs": 1})
    labels = (train.target_values("colour").double().numpy(), "category")
    preds = out_of_fold(
        lambda n: build_system(cfg, processors, targets, n), train, labels, tc, 0, time.monotonic() + 600
    )
    assert preds is not None
    probs = preds["colour"]
    assert probs.shape == (train.n_rows, 3)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)  # every row filled, by a softmax


def test_a_spent_budget_gives_no_predictions(prepared):
    cfg, processors, targets, train = prepared

    def build(n: int):
        raise AssertionError("no fold network is built once the budget is spent")

    labels = (train.target_values("colour").double().numpy(), "category")
    assert out_of_fold(build, train, labels, cfg.trainer, 0, time.monotonic() - 1) is None


def test_a_fold_serves_its_rows_only_and_shares_the_columns(prepared):
    *_, train = prepared
    part = _rows(train, np.array([0, 2]), training=False)
    assert part.n_rows == 2 and not part.training and train.training
    assert part.columns is train.columns
    assert fold_estimate(10.0, folds=5) == pytest.approx(40.0)

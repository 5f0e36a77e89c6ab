"""The lightgbm candidate's settings: from the config, and searched with Optuna."""

import numpy as np
import pytest

from plait.config import LightGBMConfig, PlaitConfig, apply_overrides
from plait.ensemble.lightgbm_search import search_lightgbm
from plait.ensemble.members import LightGBMMember, lightgbm_params
from plait.ensemble.selection import log_loss
from plait.errors import ConfigError


def table(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two informative columns (an interaction trees need depth for) and four of noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = ((x[:, 0] * x[:, 1] > 0) ^ (x[:, 2] > 1.0)).astype(np.float64)
    return x, y


def test_auto_settings_follow_the_table_and_the_config_wins():
    auto = lightgbm_params(LightGBMConfig(), "binary", (250, 6), seed=0)
    assert auto["min_data_in_leaf"] == 3 and auto["feature_fraction"] == 0.9
    assert lightgbm_params(LightGBMConfig(), "binary", (5000, 300), seed=0)["feature_fraction"] == 0.5
    given = LightGBMConfig(num_leaves=7, min_data_in_leaf=11, feature_fraction=0.4, learning_rate=0.2)
    params = lightgbm_params(given, "numeric", (250, 6), seed=0)
    assert (params["num_leaves"], params["min_data_in_leaf"], params["feature_fraction"]) == (7, 11, 0.4)
    assert params["objective"] == "regression" and params["learning_rate"] == 0.2


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="lightgbm.num_leaves"):
        apply_overrides(PlaitConfig(), lightgbm={"num_leaves": 1})
    with pytest.raises(ConfigError, match="lightgbm"):
        apply_overrides(PlaitConfig(), lightgbm={"leaves": 8})


def test_the_search_is_never_worse_than_the_config_and_repeats_itself():
    x, y = table(300, seed=0)
    x_val, y_val = table(200, seed=1)
    base = LightGBMConfig(learning_rate=0.5, num_leaves=2, search_trials=8)  # a weak start
    data = (x, y, x_val, y_val)
    best, rows = search_lightgbm(data, "binary", 0, [], seed=0, base=base, deadline=None)
    assert len(rows) == 8 and rows[0]["num_leaves"] == 2  # the config's own settings first
    assert min(r["value"] for r in rows) < rows[0]["value"]  # the search found better ones
    # The settings returned are the best trial's, and refit to the same validation loss.
    chosen = min(rows, key=lambda r: r["value"])
    assert best.num_leaves == chosen["num_leaves"] and best.search_trials == 8
    member = LightGBMMember.fit(x, y, x_val, y_val, "binary", 0, [], 0, None, best)
    assert log_loss("binary")(member.predict(x_val), y_val) == pytest.approx(chosen["value"])
    again, rows_again = search_lightgbm(data, "binary", 0, [], seed=0, base=base, deadline=None)
    assert again == best and [r["value"] for r in rows_again] == [r["value"] for r in rows]


def test_a_spent_budget_ends_the_search_after_its_first_trial():
    x, y = table(200, seed=0)
    base = LightGBMConfig(search_trials=20)
    best, rows = search_lightgbm((x, y, x, y), "binary", 0, [], seed=0, base=base, deadline=0.0)
    assert len(rows) == 1 and best == base

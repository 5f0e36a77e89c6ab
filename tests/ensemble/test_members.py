"""The candidates beside the network: the flat table they read, LightGBM and the linear
probe, saved and loaded without pickle."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plait.data.processors import CategoryProcessor, NumericProcessor, TabularProcessor
from plait.ensemble.features import flat_features, flat_layout
from plait.ensemble.members import LightGBMMember, LinearMember


def tabular(frame: pd.DataFrame) -> TabularProcessor:
    proc = TabularProcessor({"x": {}, "z": {}}, {"shop": {}})
    return proc.fit(proc.select(frame, "tabular"), "tabular")


def frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    shop = rng.choice(["north", "south"], size=rows)
    return pd.DataFrame({"x": x, "z": rng.normal(size=rows), "shop": shop})


def flat(proc: TabularProcessor, table: pd.DataFrame, present: bool = True) -> tuple[np.ndarray, list[int]]:
    processors = {"tabular": proc}
    layout = flat_layout(processors)
    encoded = proc.transform(proc.select(table, "tabular"), "tabular")
    mask = torch.full((len(table),), present)
    return flat_features(
        layout, processors, {"tabular": encoded.values}, {"tabular": mask}
    ), layout.categorical


def test_layout_names_every_column_and_marks_category_ids():
    proc = tabular(frame())
    layout = flat_layout({"tabular": proc, "own": NumericProcessor().fit(frame()["x"], "x")})
    assert layout.names[:5] == ["x", "x (missing)", "z", "z (missing)", "shop"]
    assert layout.categorical == [4]
    assert layout.inputs == {"tabular": 5, "own": 2}


def test_a_missing_cell_and_an_absent_input_are_nan():
    table = frame(4)
    table.loc[1, "x"] = np.nan
    proc = tabular(frame())
    x, _ = flat(proc, table)
    assert np.isnan(x[1, 0]) and not np.isnan(x[0, 0])  # the empty cell, not its neighbours
    assert x[1, 1] == 1.0  # its missing flag stays
    absent, _ = flat(proc, table, present=False)  # the input removed (explain, --robustness)
    assert np.isnan(absent).all()


def test_a_category_column_of_its_own_keeps_its_ids():
    values = pd.Series(["a", "b", "a"])
    proc = CategoryProcessor().fit(values, "c")
    layout = flat_layout({"c": proc})
    encoded = proc.transform(values, "c")
    x = flat_features(layout, {"c": proc}, {"c": encoded.values}, {"c": torch.ones(3, dtype=torch.bool)})
    assert layout.categorical == [0] and x.shape == (3, 1) and x[0, 0] == x[2, 0] != x[1, 0]


@pytest.mark.parametrize("kind", ["category", "binary", "numeric"])
def test_each_member_learns_saves_and_reloads_the_same_predictions(tmp_path: Path, kind: str):
    table = frame(300)
    signal = table["x"] + (table["shop"] == "north") * 1.5
    y = {
        "category": np.digitize(signal, [-0.3, 0.9]).astype(np.float64),  # three classes
        "binary": (signal > 0.7).astype(np.float64),
        "numeric": signal.to_numpy() * 10 + 5,
    }[kind]
    proc = tabular(table)
    x, categorical = flat(proc, table)
    train, val = slice(0, 200), slice(200, 300)
    classes = 3 if kind == "category" else 0
    lgbm = LightGBMMember.fit(x[train], y[train], x[val], y[val], kind, classes, categorical, seed=0)
    linear = LinearMember.fit(x[train], y[train], kind, classes, categorical, seed=0)
    for member, cls, name in ((lgbm, LightGBMMember, "m.txt"), (linear, LinearMember, "m.json")):
        pred = member.predict(x[val])
        if kind == "numeric":
            assert pred.shape == (100,) and np.corrcoef(pred, y[val])[0, 1] > 0.9
        elif kind == "binary":
            assert pred.shape == (100,) and ((pred > 0.5) == y[val]).mean() > 0.8
        else:
            assert pred.shape == (100, 3) and np.allclose(pred.sum(1), 1)
            assert (pred.argmax(1) == y[val]).mean() > 0.8
        member.save(tmp_path / name)
        assert not (tmp_path / name).read_bytes().startswith(b"\x80")  # text, not a pickle
        again = cls.load(tmp_path / name, kind)
        np.testing.assert_array_equal(again.predict(x[val]), pred)


def test_lightgbm_predicts_rows_with_missing_values():
    table = frame(300)
    y = (table["x"] > 0).astype(np.float64).to_numpy()
    proc = tabular(table)
    x, categorical = flat(proc, table)
    member = LightGBMMember.fit(x[:200], y[:200], x[200:], y[200:], "binary", 0, categorical, seed=0)
    holes = x[200:].copy()
    holes[:, 0] = np.nan  # the one informative column missing in every row
    pred = member.predict(holes)
    assert np.isfinite(pred).all() and pred.std() < member.predict(x[200:]).std()  # less sure without it

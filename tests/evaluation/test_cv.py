import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plait.config import InputConfig, PlaitConfig
from plait.data.schema import resolve_config
from plait.errors import ConfigError
from plait.evaluation.cv import cross_validate, fold_ids
from tests.conftest import tiny_config


def test_fold_ids_partition_rows_evenly_and_reproducibly():
    ids = fold_ids(23, 5, seed=0)
    assert sorted(np.bincount(ids).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(ids, fold_ids(23, 5, seed=0))
    assert not np.array_equal(ids, fold_ids(23, 5, seed=1))


def test_cross_validate_writes_one_run_per_fold(table_csv: Path, tmp_path: Path):
    config = tiny_config(trainer={"epochs": 2, "batch_size": 8, "progress": False})
    summary = cross_validate(
        table_csv, label="colour", folds=3, config=config, out=tmp_path / "cv", verbose=False
    )
    assert sorted(p.name for p in (tmp_path / "cv").iterdir()) == ["cv.json", "fold-1", "fold-2", "fold-3"]
    assert len(summary["folds"]) == 3
    rows = [
        json.loads((tmp_path / "cv" / f"fold-{k}" / "metrics.json").read_text())["rows"] for k in (1, 2, 3)
    ]
    assert sum(r["test"] for r in rows) == 60  # every row is tested exactly once
    accs = [f["accuracy"] for f in summary["folds"]]
    assert summary["mean"]["accuracy"] == pytest.approx(float(np.mean(accs)))
    assert summary["std"]["accuracy"] == pytest.approx(float(np.std(accs, ddof=1)))


def test_bad_fold_counts(table_csv: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="at least 2"):
        cross_validate(table_csv, label="colour", folds=1, out=tmp_path / "cv")
    with pytest.raises(ConfigError, match="cannot make 100 folds from 60 rows"):
        cross_validate(table_csv, label="colour", folds=100, out=tmp_path / "cv")
    assert not (tmp_path / "cv").exists()


def test_split_and_id_columns_are_never_inputs(table_csv: Path):
    # A split column Plait would not recognise by name (cv's fold column is one), and ids.
    frame = pd.read_csv(table_csv).assign(part=lambda f: np.where(f.index % 4, "train", "test"))
    config = PlaitConfig(split_column="part", id_columns=["shop"])
    resolved = resolve_config(frame, config, ["colour"])
    assert {i.name for i in resolved.inputs} == {"image", "caption", "size", "is_red", "price"}
    assert resolved.split_column == "part" and "shop" in resolved.id_columns
    for name, role in (("part", "the split column"), ("shop", "an id column")):
        listed = config.model_copy(update={"inputs": [InputConfig(name="caption"), InputConfig(name=name)]})
        with pytest.raises(ConfigError, match=f"column '{name}' is {role}, so it cannot be an input too"):
            resolve_config(frame, listed, ["colour"])

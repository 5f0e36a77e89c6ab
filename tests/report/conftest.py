"""One tiny run shared by the report tests: four targets (category, binary, numeric,
multilabel) so every evaluation section is drawn, and a split column so there is a test split."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plait.train import fit
from tests.conftest import add_tags, make_table, tiny_config

TARGETS = ["colour", "is_red", "price", "tags"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    table = add_tags(make_table(folder / "data"))
    table["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    table.to_csv(folder / "data" / "table.csv", index=False)
    fit(
        folder / "data" / "table.csv",
        label=TARGETS,
        config=tiny_config(),
        out=folder / "run",
        epochs=2,
        types={"tags": "multilabel"},
        verbose=False,
    )
    return folder / "run"


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A copy a test may change."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))

from pathlib import Path

import pandas as pd
import pytest

from plait.errors import ConfigError
from plait.evaluation.benchmark import benchmark
from tests.conftest import tiny_config


@pytest.mark.slow
def test_benchmark_compares_fusions_and_single_inputs(table_csv: Path, tmp_path: Path):
    config = tiny_config(inputs=tiny_config()["inputs"][:2])  # image + caption
    summary = benchmark(
        table_csv, "colour", ["concat"], config=config, out=tmp_path / "b", seeds=2, verbose=False
    )  # one fusion (each run is a fresh process): the methods' rows are the same code
    assert list(summary["method"]) == ["concat", "only image", "only caption"]
    for column in (
        "accuracy",
        "accuracy_std",
        "parameters",
        "seconds_per_epoch",
        "latency_ms_per_row",
        "peak_memory_mb",
        "accuracy without image",
        "accuracy without caption",
    ):
        assert column in summary, column
    assert (summary["parameters"] > 0).all() and (summary["accuracy_std"] >= 0).all()
    assert (summary["peak_memory_mb"] > 50).all()  # a whole process with torch loaded
    assert summary.loc[1:, "accuracy without image"].isna().all()  # single-input runs have nothing to drop
    runs = pd.read_csv(tmp_path / "b" / "benchmark.csv")
    assert len(runs) == 6 and set(runs["seed"]) == {0, 1}
    assert (tmp_path / "b" / "benchmark.png").stat().st_size > 1000
    assert (tmp_path / "b" / "summary.csv").exists()
    page = (tmp_path / "b" / "report.html").read_text()
    assert "only caption" in page and "data:image/png;base64," in page
    assert 'href="runs/concat-seed0/report.html"' in page  # each run's own report


def test_unknown_fusion_fails_before_training(table_csv: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown fusion 'concatt'"):
        benchmark(table_csv, "colour", ["concat", "concatt"], out=tmp_path / "b", verbose=False)
    assert not (tmp_path / "b").exists()

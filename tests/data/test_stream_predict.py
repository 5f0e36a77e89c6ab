"""Evaluating and predicting a folder of Parquet shards: streamed, every row once, the
same metrics and predictions (in table order) as for the same rows in one file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plait.data.stream_order import in_table_order
from plait.errors import DataError
from plait.outputs import write_predictions
from plait.predictor import Predictor
from plait.train import fit
from tests.data.test_streaming import tabular_frame, write_shards
from tests.test_cli import plait_many

CONFIG = {
    "trainer": {"epochs": 2, "batch_size": 16, "eval_batch_size": 8, "num_workers": 0, "progress": False}
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(run folder, one Parquet file, the same rows as 3 shards of row groups of 16)."""
    folder = tmp_path_factory.mktemp("stream-predict")
    frame = tabular_frame(150).assign(
        row_id=[f"r{i}" for i in range(150)], shop=[["north", "south", "east"][i % 3] for i in range(150)]
    )
    frame.to_parquet(folder / "table.parquet", index=False)
    config = {**CONFIG, "id_columns": ["row_id"]}
    fit(folder / "table.parquet", "y", config, out=folder / "run", verbose=False)
    return folder / "run", folder / "table.parquet", write_shards(folder, frame, shards=3, row_group=16)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_shards_evaluate_and_predict_as_one_file(trained: tuple[Path, Path, Path], workers: int):
    run, table, shards = trained
    predictor = Predictor.load(run)
    # With workers, batches arrive interleaved (each worker streams its own row groups).
    predictor.config.trainer.num_workers = workers
    metrics = predictor.evaluate(table)
    assert predictor.evaluate(shards) == pytest.approx(metrics, abs=1e-6)
    expected = predictor.predict(table)
    pd.testing.assert_frame_equal(predictor.predict(shards), expected, check_dtype=False)
    chunks = list(predictor.predict_chunks(shards, rows=20))
    assert len(chunks) > 1 and all(len(c) >= 20 for c in chunks[:-1])
    assert list(pd.concat(chunks)["row_id"]) == [f"r{i}" for i in range(150)]


def test_in_table_order_from_interleaved_batches():
    # Two workers: row groups 0-9, 20-29 and 10-19, 30-39, in batches of 6 spanning them.
    streams = [np.r_[0:10, 20:30], np.r_[10:20, 30:40]]
    batches = [[s[i : i + 6] for i in range(0, 20, 6)] for s in streams]
    delivered = [b for pair in zip(*batches, strict=True) for b in pair]
    pieces = list(
        in_table_order(((torch.as_tensor(r), {"y": torch.as_tensor(r) * 10}) for r in delivered), 7)
    )
    assert all(n >= 7 for _, n, _ in pieces[:-1])
    assert [first for first, _, _ in pieces] == list(np.cumsum([0] + [n for _, n, _ in pieces[:-1]]))
    assert torch.equal(torch.cat([p["y"] for _, _, p in pieces]), torch.arange(40) * 10)
    with pytest.raises(RuntimeError, match="not all streamed"):
        list(in_table_order([(torch.as_tensor([0, 1, 3]), {"y": torch.zeros(3)})], 1))


def test_shard_missing_a_column_is_named(trained: tuple[Path, Path, Path], tmp_path: Path):
    run, table, _ = trained
    frame = pd.read_parquet(table)
    folder = write_shards(tmp_path, frame, shards=3)
    frame.iloc[100:].drop(columns="x").to_parquet(folder / "part-002.parquet", index=False)
    lacks = r"^shard part-002.parquet: the table lacks column 'x', which the model needs as an input"
    with pytest.raises(DataError, match=lacks):
        Predictor.load(run).evaluate(folder)
    frame.iloc[100:].drop(columns="row_id").to_parquet(folder / "part-002.parquet", index=False)
    with pytest.raises(DataError, match=r"^shard part-002.parquet: unknown id column 'row_id'"):
        Predictor.load(run).predict(folder)


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_cell_in_a_shard_names_column_row_and_shard(
    trained: tuple[Path, Path, Path], tmp_path: Path, workers: int
):
    run, table, _ = trained
    frame = pd.read_parquet(table).astype({"x": str})
    frame.loc[117, "x"] = "1,200"
    folder = write_shards(tmp_path, frame, shards=3)
    predictor = Predictor.load(run)
    predictor.config.trainer.num_workers = workers
    # Raised in a loader worker too, the message is the error's own line (no traceback).
    with pytest.raises(DataError, match=r"^shard part-002.parquet: .*'x'.*row 118") as error:
        predictor.evaluate(folder)
    assert "Traceback" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_rows_with_unusable_cells_are_counted_whichever_worker_reads_them(
    trained: tuple[Path, Path, Path], tmp_path: Path, workers: int
):
    run, table, _ = trained
    frame = pd.read_parquet(table).astype({"x": str})
    frame.loc[[5, 60, 117], "x"] = ["1,200", "n/a?", "12 kg"]  # in three shards
    folder = write_shards(tmp_path, frame, shards=3)
    predictor = Predictor.load(run)
    predictor.config.on_bad_row = "missing"
    predictor.config.trainer.num_workers = workers
    with pytest.warns(UserWarning, match=r"^3 row\(s\) with an unusable cell evaluated"):
        streamed = predictor.evaluate(folder)
    with pytest.warns(UserWarning, match=r"^3 row\(s\) with an unusable cell evaluated"):
        assert predictor.evaluate(frame) == pytest.approx(streamed, abs=1e-6)
    with pytest.warns(UserWarning, match=r"^3 row\(s\) with an unusable cell predicted"):
        assert len(predictor.predict(folder)) == 150


def test_failed_write_half_way_keeps_the_previous_file(tmp_path: Path):
    for name in ("p.csv", "p.parquet", "p.jsonl"):
        output = tmp_path / name
        write_predictions([pd.DataFrame({"a": [1, 2]})], output)
        before = output.read_bytes()

        def frames():
            yield pd.DataFrame({"a": [3]})
            raise DataError("row 2: broken")

        with pytest.raises(DataError, match="row 2"):
            write_predictions(frames(), output)
        assert output.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_predictions_are_written_piece_by_piece(tmp_path: Path):
    # A column read as floats in one piece and as ints in the next: the first piece decides.
    pieces = [
        pd.DataFrame({"id": [1.5, 2.5], "y": ["a", "b"]}),
        pd.DataFrame({"id": [3, 4], "y": ["c", "d"]}),
    ]
    for name in ("p.csv", "p.parquet", "p.jsonl"):
        output = tmp_path / name
        assert write_predictions(iter(pieces), output) == 4
        read = {".csv": pd.read_csv, ".parquet": pd.read_parquet}.get(output.suffix)
        back = read(output) if read else pd.read_json(output, lines=True)
        assert list(back["y"]) == ["a", "b", "c", "d"] and list(back["id"]) == [1.5, 2.5, 3, 4]


@pytest.mark.slow
def test_cli_evaluate_and_predict_a_shard_folder(trained: tuple[Path, Path, Path], tmp_path: Path):
    run, table, shards = trained
    runs = {"file.parquet": table, "shards.parquet": shards, "shards.csv": shards}
    results = plait_many(
        *(["evaluate", run, data, "--json"] for data in (table, shards)),
        *(["predict", run, data, "--output", tmp_path / name] for name, data in runs.items()),
    )
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    whole, streamed = (json.loads(r.stdout) for r in results[:2])
    assert streamed == pytest.approx(whole, abs=1e-6) and "accuracy" in streamed
    assert all("wrote 150 predictions" in r.stderr for r in results[2:])
    expected = pd.read_parquet(tmp_path / "file.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "shards.parquet"), expected)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "shards.csv"), expected, check_dtype=False)


def test_cli_errors_on_a_shard_folder(trained: tuple[Path, Path, Path], tmp_path: Path):
    from typer.testing import CliRunner

    from plait.cli import app

    run, _, shards = trained
    result = CliRunner().invoke(app, ["evaluate", str(run), str(shards), "--robustness"])
    assert result.exit_code == 2 and "folder (or URL) of Parquet shards" in result.output
    result = CliRunner().invoke(app, ["predict", str(run), "memory://nowhere", "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "table folder not found: memory://nowhere" in result.output
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_report_of_a_streamed_run_says_what_the_sample_covers(tmp_path: Path):
    folder = write_shards(tmp_path, tabular_frame(400), shards=2, row_group=50)
    config = {"trainer": {**CONFIG["trainer"], "epochs": 1, "stream_sample_rows": 100}}
    fit(folder, "y", config, out=tmp_path / "run", types={"row_id": "ignore"}, verbose=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    sample = summary["sample_rows"]  # the first rows of row groups, until 100 are taken
    assert summary["rows"]["table"] == 400 and 100 <= sample < 200
    counts = summary["labels"]["y"]["counts"]
    assert sum(map(sum, counts.values())) == 400  # label counts: every row, not the sample
    page = (tmp_path / "run" / "report.html").read_text()
    assert "cover all 400 rows" in page and f"a sample of {sample} rows" in page

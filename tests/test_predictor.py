"""Loading run folders: damaged or incomplete folders say which file and why."""

import json
import shutil
from pathlib import Path

import pytest

import plait
from plait.errors import DataError, RunFolderError
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    from tests.conftest import make_table

    folder = tmp_path_factory.mktemp("data")
    make_table(folder, rows=30).to_csv(folder / "t.csv", index=False)
    run = folder / "run"
    plait.fit(
        folder / "t.csv",
        label="colour",
        config=tiny_config(trainer={"epochs": 1, "progress": False}),
        out=run,
        verbose=False,
    )
    return run, folder / "t.csv"


def broken_copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


@pytest.mark.parametrize("name", ["config.yaml", "processors.json", "model.safetensors", "plait.json"])
def test_missing_file_is_named(trained, tmp_path: Path, name: str):
    copy = broken_copy(trained[0], tmp_path)
    (copy / name).unlink()
    with pytest.raises(RunFolderError, match=f"is missing {name}"):
        plait.load(copy)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("processors.json", "{not json", "processors.json is damaged: not valid JSON"),
        (
            "processors.json",
            '{"inputs": {"image": {"kind": "video"}}, "targets": {}}',
            "processors.json is damaged",
        ),
        ("config.yaml", "trainer: {epochs: -1}\n", "config.yaml is damaged"),
        ("model.safetensors", "garbage", "model.safetensors is damaged"),
        ("plait.json", '{"format_version": 99}', "run format 99 is not supported"),
    ],
)
def test_damaged_file_is_named(trained, tmp_path: Path, name: str, content: str, match: str):
    copy = broken_copy(trained[0], tmp_path)
    (copy / name).write_text(content)
    with pytest.raises(RunFolderError, match=match):
        plait.load(copy)


def test_weights_that_do_not_match_the_config(trained, tmp_path: Path):
    copy = broken_copy(trained[0], tmp_path)
    config = (copy / "config.yaml").read_text().replace("out_dim: 8", "out_dim: 9")
    (copy / "config.yaml").write_text(config)
    with pytest.raises(RunFolderError, match="does not match config.yaml"):
        plait.load(copy)


def test_nothing_in_the_run_is_a_pickle(trained):
    for path in trained[0].iterdir():
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"\x80\x05", path  # pickle protocol headers
    json.loads((trained[0] / "processors.json").read_text())


def test_predict_needs_the_input_columns_but_not_the_label(trained, tmp_path: Path):
    import pandas as pd

    run, table = trained
    frame = pd.read_csv(table)
    predictor = plait.load(run)
    assert len(predictor.predict(frame.drop(columns=["colour"]), base_dir=table.parent)) == 30
    lacks = "the table lacks column 'caption', which the model needs as an input"
    with pytest.raises(DataError, match=lacks):
        predictor.predict(frame.drop(columns=["caption"]), base_dir=table.parent)
    with pytest.raises(DataError, match="the table lacks column 'colour', which the model needs as a label"):
        predictor.evaluate(frame.drop(columns=["colour"]), base_dir=table.parent)

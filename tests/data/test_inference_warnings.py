"""Column inference that would quietly change a column's meaning: each case is named
in one warning (a PlaitWarning, one line on the command line, once), or refused where
training would be meaningless."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from plait.config import PlaitConfig
from plait.data.schema import resolve_config
from plait.data.table import read_table
from plait.errors import DataError, PlaitWarning
from tests.conftest import make_table
from tests.test_cli import plait_many


def resolve_quietly(frame: pd.DataFrame, label: str = "colour", **types: str) -> PlaitConfig:
    """resolve_config, failing on any PlaitWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlaitWarning)
        return resolve_config(frame, PlaitConfig(), [label], types)


def with_stray_number(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"size": object})
    frame.loc[10, "size"] = "1,200"
    return frame


def test_a_clean_table_raises_no_warning(tmp_path: Path):
    resolve_quietly(make_table(tmp_path, rows=30))


def test_stray_text_in_a_numeric_column_is_named(tmp_path: Path):
    frame = with_stray_number(make_table(tmp_path, rows=30))
    with pytest.warns(PlaitWarning, match=r"column 'size' holds numbers but also '1,200' \(row 11\)") as got:
        cfg = resolve_config(frame, PlaitConfig(), ["colour"])
    assert "--type size=numeric" in str(got[0].message) and "--on-bad-row" in str(got[0].message)
    assert {i.name: i.type for i in cfg.inputs}["size"] == "category"  # the guess is kept, and named
    cfg = resolve_quietly(frame, size="numeric")  # declared: no warning
    assert {i.name: i.type for i in cfg.inputs}["size"] == "numeric"


def test_a_header_naming_a_column_twice_is_named(tmp_path: Path):
    (tmp_path / "t.csv").write_text("id,text,text,colour\n1,a,b,red\n2,c,d,blue\n")
    read_as = r"names column 'text' 2 times; the later ones are read as 'text\.1'"
    with pytest.warns(PlaitWarning, match=read_as):
        frame = read_table(tmp_path / "t.csv").frame
    assert list(frame.columns) == ["id", "text", "text.1", "colour"]
    twice = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])  # Parquet and DataFrames keep both
    with pytest.raises(DataError, match="several columns named 'a'"):
        read_table(twice)


def test_labels_no_classifier_can_learn_are_refused(tmp_path: Path):
    frame = make_table(tmp_path, rows=30)
    frame["name"] = [f"item {i}" for i in range(len(frame))]
    with pytest.raises(DataError, match=r"label 'name' has a different value in each of its 30 rows"):
        resolve_config(frame, PlaitConfig(), ["name"])
    with pytest.raises(DataError, match=r"label 'image' holds file paths"):
        resolve_config(frame, PlaitConfig(), ["image"])
    assert resolve_quietly(frame, "name", name="text").outputs[0].type == "text"  # declared: trusted
    assert resolve_quietly(frame, "price").outputs[0].type == "numeric"  # unique numbers: regression


def test_an_empty_column_is_named_and_left_out(tmp_path: Path):
    frame = make_table(tmp_path, rows=30).assign(photo="")
    with pytest.warns(PlaitWarning, match=r"^column 'photo' is empty in every row: ignored$"):
        cfg = resolve_config(frame, PlaitConfig(), ["colour"])
    assert "photo" not in [i.name for i in cfg.inputs] and "photo" not in cfg.id_columns


def test_paths_of_unread_media_are_not_categories(tmp_path: Path):
    frame = make_table(tmp_path, rows=30)
    frame["clip"] = [f"clips/{i}.heic" for i in range(len(frame))]
    with pytest.warns(
        PlaitWarning, match=r"column 'clip' holds \.heic file paths, which Plait does not read"
    ):
        cfg = resolve_config(frame, PlaitConfig(), ["colour"])
    assert "clip" not in [i.name for i in cfg.inputs]


# -- the command line: one line per warning, each once, also over cross-validation folds --
WARNINGS = {
    "stray": "warning: column 'size' holds numbers but also '1,200' (row 11)",
    "duplicate": "warning: the header of doubts.csv names column 'caption' 2 times",
    "empty": "warning: column 'photo' is empty in every row: ignored",
    "media": "warning: column 'clip' holds .heic file paths, which Plait does not read",
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("doubts")
    with pytest.MonkeyPatch.context() as env:  # the suite's caches stay out of ~/.cache
        env.setenv("PLAIT_CACHE_DIR", str(folder / "cache"))
        frame = with_stray_number(make_table(folder, rows=24))
        frame["photo"] = ""
        frame["clip"] = [f"clips/{i}.heic" for i in range(len(frame))]
        frame = frame.assign(again=frame["caption"])
        header, body = frame.to_csv(index=False).split("\n", 1)
        (folder / "doubts.csv").write_text(header.replace(",again", ",caption") + "\n" + body)
        frame.assign(name=[f"item {i}" for i in range(len(frame))]).to_csv(folder / "t.csv", index=False)
        config = folder / "c.yaml"
        config.write_text(yaml.safe_dump({"trainer": {"epochs": 1, "batch_size": 8, "progress": False}}))
        common = ["-c", config, "--epochs", "1"]
        commands = {
            "train": ["train", folder / "doubts.csv", "-l", "colour", *common, "--out", folder / "a"],
            "cv": ["cv", folder / "doubts.csv", "-l", "colour", *common, "--folds=2", "--out", folder / "b"],
            "declared": [
                *("train", folder / "t.csv", "-l", "colour", *common, "--out", folder / "c"),
                *("--type", "size=numeric", "--on-bad-row", "missing"),
            ],
            "unique label": ["train", folder / "t.csv", "-l", "name", *common, "--out", folder / "d"],
            "path label": ["train", folder / "t.csv", "-l", "image", *common, "--out", folder / "e"],
        }
        return dict(zip(commands, plait_many(*commands.values()), strict=True))


def warned(result: subprocess.CompletedProcess, key: str) -> list[str]:
    """The stderr lines of warning `key`; the command itself succeeded."""
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith(WARNINGS[key])]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_stray_text_warns_once_on_one_line(cli: dict, command: str):
    (line,) = warned(cli[command], "stray")
    assert line.endswith("see --on-bad-row)") and "--type size=numeric" in line


def test_cli_declared_numeric_makes_stray_text_a_bad_number(cli: dict):
    assert warned(cli["declared"], "stray") == []
    assert "1 row(s) with an unreadable file or a bad number kept" in cli["declared"].stderr


@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_duplicate_header_warns_once(cli: dict, command: str):
    (line,) = warned(cli[command], "duplicate")
    assert "'caption.1'" in line


@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_empty_column_warns_once(cli: dict, command: str):
    assert len(warned(cli[command], "empty")) == 1


@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_unread_media_warns_once(cli: dict, command: str):
    assert len(warned(cli[command], "media")) == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("unique label", "error: label 'name' has a different value in each of its 24 rows"),
        ("path label", "error: label 'image' holds file paths"),
    ],
)
def test_cli_meaningless_labels_are_one_line_errors(cli: dict, command: str, message: str):
    result = cli[command]
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

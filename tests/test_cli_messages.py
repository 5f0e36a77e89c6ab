"""Issue 23, item 6: user mistakes that used to print many lines (or a misleading one)
are one line on stderr and exit 2, through the real CLI. All the command lines run
in one process (tests.test_cli.plait_many)."""

from __future__ import annotations

import json
import socket
import zipfile

import pandas as pd
import pytest
import torch
import yaml

from plait.resume import LAST, RESUME_INFO, work_dir
from tests.conftest import make_table, tiny_config
from tests.test_cli import plait_many


class Exploit:
    """A pickle that would run code if unpickled (the weights-only loader refuses it)."""

    def __reduce__(self):
        return (print, ("pwned",))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from plait.train import fit

    root = tmp_path_factory.mktemp("messages")
    frame = make_table(root, rows=24)
    table = root / "t.csv"
    frame.to_csv(table, index=False)
    config = tiny_config()
    config["trainer"].update(epochs=1)
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    fit(table, label="colour", config=config, out=root / "run", verbose=False)
    train = ["train", table, "--label", "colour", "--config", cfg]

    # --resume into interrupted runs whose recorded config, data or checkpoint is wrong.
    resolved = (root / "run" / "config.yaml").read_text()
    recorded = {
        "changed-config": ("trainer: {epochs: 99}\n", None, b"not used"),
        "changed-data": (resolved, {"sha256": "0" * 64}, b"not used"),
        "malicious": (resolved, None, None),
    }
    for name, (config_yaml, data, checkpoint) in recorded.items():
        work = work_dir(root / name)
        work.mkdir()
        (work / RESUME_INFO).write_text(
            json.dumps({"out": str(root / name), "config": config_yaml, "data": data})
        )
        if checkpoint is None:
            torch.save({"state_dict": {}, "payload": Exploit()}, work / LAST)
        else:
            (work / LAST).write_bytes(checkpoint)

    with zipfile.ZipFile(root / "t.xlsx", "w") as book:  # what an .xlsx file is: a zip
        book.writestr("xl/workbook.xml", "<workbook/>")
    frame.to_csv(root / "semicolons.csv", sep=";", index=False)
    frame.assign(image=frame["image"].replace("images/3.png", "http://example.com/3.png")).to_csv(
        root / "url.csv", index=False
    )
    frame.assign(
        image=frame["image"].replace({"images/9.png": "images/gone9.png", "images/2.png": "gone2.png"})
    ).to_csv(root / "two-bad.csv", index=False)
    frame.drop(columns="caption").to_csv(root / "no-caption.csv", index=False)

    with socket.socket() as busy:  # a port something already listens on
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lines = {
            "busy port": ["serve", root / "run", "--port", port],
            "resume, changed config": [
                *train,
                "--out",
                root / "changed-config",
                "--resume",
                root / "changed-config",
            ],
            "resume, changed data": [
                *train,
                "--out",
                root / "changed-data",
                "--resume",
                root / "changed-data",
            ],
            "resume, malicious": [*train, "--out", root / "malicious", "--resume", root / "malicious"],
            "xlsx": ["train", root / "t.xlsx", "--label", "colour"],
            "semicolons": [
                "train",
                root / "semicolons.csv",
                "--label",
                "colour",
                "--config",
                cfg,
                "--out",
                root / "s",
            ],
            "url": ["train", root / "url.csv", "--label", "colour", "--config", cfg, "--out", root / "u"],
            "evaluate a file": ["evaluate", table, table],
            "predict without a column": [
                "predict",
                root / "run",
                root / "no-caption.csv",
                "-o",
                root / "p.csv",
            ],
            "two bad rows": [
                "train",
                root / "two-bad.csv",
                "--label",
                "colour",
                "--config",
                cfg,
                "--out",
                root / "b",
            ],
        }
        results = dict(zip(lines, plait_many(*lines.values()), strict=True))
    return {"root": root, "results": results}


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.slow
def test_serve_on_a_busy_port_says_so_in_one_line(ran):
    assert "is already in use" in one_line(ran["results"]["busy port"])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("resume, changed config", "the config differs from the interrupted run's"),
        ("resume, changed data", "the data differs from the interrupted run's"),
        ("resume, malicious", "last.ckpt"),
    ],
)
def test_resume_errors_come_before_the_schema_table(ran, case: str, message: str):
    line = one_line(ran["results"][case])  # one line: no schema table printed before it
    assert message in line
    assert "pwned" not in ran["results"][case].stdout + ran["results"][case].stderr


def test_a_spreadsheet_is_named_as_such(ran):
    line = one_line(ran["results"]["xlsx"])
    assert "spreadsheet" in line and "save it as CSV" in line


def test_a_semicolon_separated_csv_is_read(ran):
    result = ran["results"]["semicolons"]
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((ran["root"] / "s" / "config.yaml").read_text())
    assert {i["name"] for i in config["inputs"]} >= {"image", "caption", "size", "shop"}


def test_a_url_in_a_media_cell_is_not_fetched(ran):
    line = one_line(ran["results"]["url"])
    assert "column 'image', row 4: http://example.com/3.png is a URL" in line and "offline" in line


def test_evaluate_given_a_file_says_it_is_not_a_folder(ran):
    assert "is a file, not a run folder" in one_line(ran["results"]["evaluate a file"])


def test_predict_names_the_column_the_table_lacks(ran):
    line = one_line(ran["results"]["predict without a column"])
    assert "the table lacks column 'caption', which the model needs as an input" in line
    assert not (ran["root"] / "p.csv").exists()


def test_the_first_bad_row_is_named(ran):
    line = one_line(ran["results"]["two bad rows"])
    assert "column 'image', row 3:" in line, line  # rows 3 and 10 are bad; row 3 comes first
    assert pd.read_csv(ran["root"] / "two-bad.csv").shape[0] == 24

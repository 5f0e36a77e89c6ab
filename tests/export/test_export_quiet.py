"""`plait export` prints its one result line: torch's exporters' known, harmless
warnings are silenced by message (every warning is shown in `plait_many`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_table, tiny_config
from tests.test_cli import plait_many


@pytest.mark.slow
def test_export_prints_one_line_and_no_warnings(tmp_path: Path):
    from plait.train import fit

    make_table(tmp_path).to_csv(tmp_path / "t.csv", index=False)
    config = tiny_config()  # image CNN + text GRU (whose weight list torch warns about) + tabular
    config["trainer"]["epochs"] = 1
    fit(tmp_path / "t.csv", label="colour", config=config, out=tmp_path / "run", verbose=False)
    formats = {"onnx": "m.onnx", "torchscript": "m.pt", "pt2": "m.pt2"}
    results = plait_many(
        *(["export", tmp_path / "run", "--format", f, "--output", tmp_path / n] for f, n in formats.items())
    )
    for (fmt, name), result in zip(formats.items(), results, strict=True):
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", (fmt, result.stderr)
        (line,) = result.stdout.splitlines()
        assert line.startswith(f"wrote {tmp_path / name} ("), fmt

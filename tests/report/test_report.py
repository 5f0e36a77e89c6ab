"""report.html: written by every training run, self-contained, rebuilt by `plait report`."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from plait.errors import RunFolderError
from plait.report import save_training_report, write_benchmark_report, write_report
from tests.test_cli import plait_in

IMPORTANCE = {
    "target": "colour",
    "metric": "accuracy",
    "clean": 0.95,
    "rows": 20,
    "bootstrap": 50,
    "inputs": [
        {"input": "image", "method": "remove", "score": 0.61, "drop": 0.34, "low": 0.3, "high": 0.38},
        {"input": "image", "method": "permute", "score": 0.55, "drop": 0.40, "low": 0.35, "high": 0.45},
        {"input": "caption", "method": "remove", "score": 0.9, "drop": 0.05, "low": None, "high": None},
        {"input": "caption", "method": "only", "score": 0.33, "drop": 0.62, "low": 0.5, "high": 0.7},
    ],
    "modalities": [
        {"modality": "image", "method": "remove", "score": 0.61, "drop": 0.34, "low": 0.3, "high": 0.38},
        {"modality": "text", "method": "remove", "score": 0.9, "drop": 0.05, "low": 0.0, "high": 0.1},
    ],
    "per_class": [
        {"class": "red", "input": "image", "method": "remove", "drop": 0.5},
        {"class": "blue", "input": "image", "method": "remove", "drop": 0.25},
    ],
    "warnings": ["The model ignores caption: removing it changes accuracy by less than 0.01."],
}
ROBUSTNESS = {
    "metric": "accuracy",
    "clean": 0.9,
    "missing": [{"condition": "without image", "dropped": "image", "accuracy": 0.6}],
    "noise": [
        {"input": "image", "corruption": "blur", "level": level, "accuracy": 0.9 - level / 2}
        for level in (0.0, 0.5, 1.0)
    ],
    "summary": [
        {
            "input": "image",
            "corruption": "blur",
            "clean": 0.9,
            "worst": 0.4,
            "relative": 0.65,
            "effective": None,
        }
    ],
}


def images(page: str) -> list[str]:
    return re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)


def test_every_training_run_writes_a_report(trained_run: Path):
    page = (trained_run / "report.html").read_text()
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["held_out"] == "test" and summary["rows"] == {
        "table": 60,
        "train": 40,
        "val": 10,
        "test": 10,
    }
    assert {c["name"]: c["role"] for c in summary["columns"]}["split"] == "split"
    assert summary["labels"]["colour"]["counts"]["train"] == [13, 13, 14]  # blue, green, red
    assert sum(map(sum, summary["evaluation"]["colour"]["confusion"])) == 10
    assert len(summary["evaluation"]["price"]["true"]) == 10
    assert "Plait run report: run" in page and ".tmp-" not in page  # named after the final folder
    for anchor in ("overview", "data", "training", "evaluation", "importance", "robustness", "config"):
        assert f'<section id="{anchor}">' in page
    for alt in (
        "colour distribution",
        "price histogram",
        "learning curves",
        "colour confusion matrix",
        "colour ROC and precision-recall curves",
        "is_red confusion matrix",
        "residual plot",
        "tags ROC and precision-recall curves",
    ):
        assert f'alt="{alt}"' in page, alt
    assert "could not be drawn" not in page
    assert "Not computed; run <code>plait explain RUN DATA</code>" in page  # absent analyses say how
    assert "plait evaluate RUN DATA --robustness" in page


def test_report_is_self_contained(trained_run: Path):
    page = (trained_run / "report.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert "<script" not in page
    sources = images(page)
    assert len(sources) >= 8
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert min(Image.open(io.BytesIO(data)).size) > 100


def test_importance_and_robustness_sections(run_copy: Path):
    (run_copy / "importance.json").write_text(json.dumps(IMPORTANCE))
    (run_copy / "robustness.json").write_text(json.dumps(ROBUSTNESS))
    before = len(images((run_copy / "report.html").read_text()))
    page = write_report(run_copy).read_text()
    assert len(images(page)) == before + 3  # importance per input and per modality, noise curves
    warning = "The model ignores caption: removing it changes accuracy by less than 0.01."
    assert page.count(warning) == 2  # at the top of the page and in its section
    assert 'alt="importance input"' in page and 'alt="importance modality"' in page
    assert "<td>only</td>" in page  # the score alone: in the table, not drawn among the drops
    assert "Recall drop per class with each input removed" in page
    assert "without image" in page and '<td class="num">-0.3</td>' in page  # the change from clean
    assert 'alt="noise curves"' in page and "Not computed" not in page


def test_damaged_analysis_file_spoils_only_its_section(run_copy: Path, caplog: pytest.LogCaptureFixture):
    (run_copy / "importance.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, "plait.report"):
        page = write_report(run_copy).read_text()
    assert "This section could not be drawn: JSONDecodeError" in page
    assert 'alt="residual plot"' in page  # the rest is still there
    assert any("Modality importance" in r.message for r in caplog.records)


def test_a_failing_report_never_costs_the_run(run_copy: Path, monkeypatch, caplog):
    (run_copy / "summary.json").unlink()
    with caplog.at_level(logging.WARNING, "plait.report"):  # summary fails: run is not one
        path = save_training_report(run_copy, None, pd.DataFrame(), {}, run=None)  # type: ignore[arg-type]
    assert path is not None and "No data summary" in path.read_text()
    assert "could not summarise" in caplog.text

    monkeypatch.setattr("plait.report.write_page", _raise)
    assert save_training_report(run_copy, None, pd.DataFrame(), {}, run=None) is None  # type: ignore[arg-type]
    assert "could not write report.html" in caplog.text


def _raise(*args: object) -> None:
    raise OSError("disk full")


def test_not_a_run_folder(tmp_path: Path):
    with pytest.raises(RunFolderError, match="is not a run folder: it has no plait.json"):
        write_report(tmp_path)
    with pytest.raises(RunFolderError, match="run folder not found"):
        write_report(tmp_path / "missing")


def test_plait_report_rebuilds_it(run_copy: Path, tmp_path: Path):
    (run_copy / "report.html").unlink()
    result = plait_in("report", run_copy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(run_copy / "report.html")
    assert 'alt="residual plot"' in (run_copy / "report.html").read_text()

    result = plait_in("report", tmp_path / "data")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "not found" in result.stderr


def test_benchmark_report(tmp_path: Path):
    summary = pd.DataFrame(
        {"method": ["concat", "only image"], "accuracy": [0.9, 0.7], "accuracy_std": [0.0, 0.1]}
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    summary.assign(seed=0, held_out="test").to_csv(tmp_path / "benchmark.csv", index=False)
    buffer = io.BytesIO()
    Image.new("RGB", (200, 120), "white").save(buffer, format="PNG")
    (tmp_path / "benchmark.png").write_bytes(buffer.getvalue())
    (tmp_path / "runs" / "concat-seed0").mkdir(parents=True)
    (tmp_path / "runs" / "concat-seed0" / "report.html").write_text("<html></html>")
    page = write_benchmark_report(tmp_path).read_text()
    assert "only image" in page and len(images(page)) == 1 and "on the test rows" in page
    assert 'href="runs/concat-seed0/report.html"' in page


def test_text_and_retrieval_targets_get_their_metrics(tmp_path: Path):
    from plait.train import fit
    from tests.conftest import TINY_CONFIG, TINY_ENCODERS, make_table

    frame = make_table(tmp_path, rows=30, missing=False)
    frame.assign(words=[f"the {c} one" for c in frame["colour"]]).to_csv(tmp_path / "t.csv", index=False)
    config = {
        "inputs": [
            {"name": "image", "type": "image", "encoder": TINY_ENCODERS["image"]},
            {"name": "caption", "type": "text", "encoder": TINY_ENCODERS["text"]},
        ],
        "outputs": [
            {"name": "words", "type": "text", "head": {"name": "decoder", "dim": 16, "depth": 1}},
            {"name": "match", "type": "retrieval", "columns": ["image", "caption"]},
        ],
        **TINY_CONFIG,
    }
    fit(tmp_path / "t.csv", config=config, out=tmp_path / "run", epochs=1, verbose=False)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "could not be drawn" not in page and "words/bleu" in page and "match/recall@1" in page
    assert "no per-row evaluation details" in page  # nothing to plot beyond the metrics

"""Exported models give the run's own predictions (max abs difference ≤ 1e-4), through
onnxruntime for ONNX, and the runtime loads no training code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plait.errors import ConfigError
from plait.export import export_run
from plait.predictor import Predictor
from plait.runtime import Runtime
from plait.train import fit
from tests.conftest import tiny_config
from tests.test_cli import plait_in


def train(table: Path, folder: Path, **overrides: object) -> Path:
    config = tiny_config(**overrides)
    config["trainer"]["epochs"] = 1
    fit(table, label="colour", config=config, out=folder, verbose=False)
    return folder


def assert_same(exported: Path, run: Path, table: Path) -> None:
    expected = Predictor.load(run).predict(table)
    got = Runtime.load(exported).predict(table)
    assert list(got.columns) == list(expected.columns)
    probs = [c for c in expected.columns if "_prob_" in c]
    assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= 1e-4
    assert (got["colour"] == expected["colour"]).all() and (got["id"] == expected["id"]).all()


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The reference model: image CNN + text GRU (+ tabular), concatenated."""
    from tests.conftest import make_table

    folder = tmp_path_factory.mktemp("export")
    make_table(folder).to_csv(folder / "table.csv", index=False)
    return train(folder / "table.csv", folder / "run"), folder / "table.csv"


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "suffix"), [("onnx", ".onnx"), ("torchscript", ".pt"), ("pt2", ".pt2")])
def test_reference_model_in_every_format(
    reference_run: tuple[Path, Path], tmp_path: Path, fmt: str, suffix: str
):
    run, table = reference_run
    path = export_run(run, fmt, tmp_path / f"model{suffix}")
    assert_same(path, run, table)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["attention", "low_rank_tensor", "late"])
def test_one_fusion_of_each_family_through_onnx(table_csv: Path, tmp_path: Path, fusion: str):
    run = train(table_csv, tmp_path / "run", fusion=fusion)
    assert_same(export_run(run, "onnx", tmp_path / "model.onnx"), run, table_csv)


@pytest.mark.slow
def test_cli_export_and_the_light_runtime(reference_run: tuple[Path, Path], tmp_path: Path):
    run, table = reference_run
    model = tmp_path / "model.onnx"
    result = plait_in("export", run, "--format", "onnx", "--output", model)
    assert result.returncode == 0, result.stderr
    script = (
        "import sys; from plait.runtime import main; code = main(sys.argv[1:]); "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'torchmetrics') "
        "or m in ('plait.train', 'plait.model', 'plait.build', 'plait.predictor', 'plait.system')]; "
        "print(heavy); sys.exit(code)"
    )
    out = tmp_path / "p.csv"
    done = subprocess.run(
        [sys.executable, "-c", script, str(model), str(table), "--output", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # no training code was imported
    expected = Predictor.load(run).predict(table)
    assert (pd.read_csv(out)["colour"] == expected["colour"]).all()

    result = plait_in("export", run, "--format", "tflite", "--output", tmp_path / "m.tflite")
    assert result.returncode == 2 and "--format must be one of onnx, torchscript, pt2" in result.stderr


def test_what_cannot_export_says_why(table_csv: Path, tmp_path: Path):
    config = tiny_config()
    config["inputs"] = config["inputs"][:2]
    config["trainer"]["epochs"] = 1
    fit(table_csv, config=config, retrieval=["image", "caption"], out=tmp_path / "run", verbose=False)
    with pytest.raises(ConfigError, match="retrieval task; its embeddings come from plait embed"):
        export_run(tmp_path / "run", "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_text_target_is_refused_in_one_line():
    """Beam search (the default decoding) is a data-dependent loop: refused, not traced."""
    from types import SimpleNamespace

    from plait.export import check_exportable
    from plait.heads import HEADS

    head = HEADS.build(
        "decoder", {"dim": 8, "depth": 1, "heads": 2}, in_dim=4, token_dims={}, vocab_size=6, max_length=5
    )
    model = SimpleNamespace(encoders={}, heads={"caption": head})
    stand_in = SimpleNamespace(model=model, run=SimpleNamespace(ensemble=None), processors={})
    with pytest.raises(
        ConfigError, match="^cannot export: target 'caption' generates text, a data-dependent"
    ):
        check_exportable(stand_in)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["audio_cnn", "audio_cnn1d", "audio_gru"])
def test_audio_encoders_through_onnx(tmp_path: Path, encoder: str):
    """Audio (with its frame mask) + category; each from-scratch audio encoder exports."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    (tmp_path / "audio").mkdir()
    rows = []
    for i in range(24):
        seconds = 0.25 if i % 4 else 0.1  # some clips shorter than the fitted duration
        wave = 0.5 * np.sin(2 * np.pi * (300 + 300 * (i % 3)) * np.arange(int(seconds * 8000)) / 8000)
        noisy = (wave + rng.normal(0, 0.01, wave.shape)).astype(np.float32)
        sf.write(tmp_path / f"audio/{i}.wav", noisy, 8000)
        rows.append({"id": i, "voice": f"audio/{i}.wav", "colour": ["red", "green", "blue"][i % 3]})
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    config = tiny_config()
    config["inputs"] = [
        {
            "name": "voice",
            "type": "audio",
            "encoder": {"name": encoder},
            "preprocessing": {"sample_rate": 8000, "n_mels": 16, "duration": 0.25},
        }
    ]
    config["trainer"]["epochs"] = 1
    run, table = tmp_path / "run", tmp_path / "t.csv"
    fit(table, label="colour", config=config, out=run, verbose=False)
    assert_same(export_run(run, "onnx", tmp_path / "m.onnx"), run, table)

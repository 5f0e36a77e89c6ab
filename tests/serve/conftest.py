"""One tiny served run (image, text, numeric, category and audio inputs), trained once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

import plait
from plait.predictor import Predictor
from plait.serve import ServeOptions, create_app
from tests.conftest import make_table, tiny_config

PITCH = {"red": 300, "green": 600, "blue": 1200}  # Hz: the audio says the colour too


def tone(hz: float, seconds: float = 0.25, rate: int = 8000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path]:
    """The trained predictor and its data folder (images/, audio/, t.csv)."""
    folder = tmp_path_factory.mktemp("serve_data")
    frame = make_table(folder, rows=30)
    (folder / "audio").mkdir()
    for i, colour in enumerate(frame["colour"]):
        sf.write(folder / f"audio/{i}.wav", tone(PITCH[colour]), 8000)
    frame["voice"] = [f"audio/{i}.wav" for i in range(len(frame))]
    frame.to_csv(folder / "t.csv", index=False)
    config = tiny_config(trainer={"epochs": 1, "batch_size": 8, "progress": False})
    config["inputs"].append(
        {
            "name": "voice",
            "type": "audio",
            "encoder": {"name": "audio_cnn", "channels": [4], "out_dim": 8},
            "preprocessing": {"sample_rate": 8000, "n_mels": 16, "duration": 0.25},
        }
    )
    predictor = plait.fit(folder / "t.csv", label="colour", config=config, out=folder / "run", verbose=False)
    return plait.load(predictor.run_dir), folder  # type: ignore[arg-type]


@pytest.fixture
def client(served: tuple[Predictor, Path]) -> Iterator[TestClient]:
    """The app with paths allowed under the data folder (the lifespan runs the batcher)."""
    predictor, folder = served
    with TestClient(create_app(predictor, ServeOptions(allow_dir=folder, max_upload_mb=1))) as test_client:
        yield test_client


def reference(predictor: Predictor, folder: Path, rows: list[dict]) -> pd.DataFrame:
    """What the predictor says for the same cells given as a table (paths under `folder`)."""
    columns = ["id", "image", "caption", "size", "shop", "voice"]
    return predictor.predict(pd.DataFrame(rows, columns=columns), base_dir=folder)


def b64(path: Path) -> dict[str, str]:
    return {"base64": base64.b64encode(path.read_bytes()).decode()}

"""A video column end to end: `plait train` → predict (video missing, sound missing) →
evaluate --robustness → explain, refused export, and serving a clip."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

import plait
from plait.serve import ServeOptions, create_app
from tests.test_cli import plait_in
from tests.video_clips import direction_table

CONFIG = {
    "inputs": [
        {
            "name": "clip",
            "type": "video",
            "audio": {"n_mels": 16, "sample_rate": 8000},
            "encoder": {"name": "video_cnn", "channels": [4, 8], "out_dim": 16, "grid": 2},
            "preprocessing": {"frames": 4, "size": 16},
        }
    ],
    "encoders": {"audio": {"name": "audio_cnn1d", "channels": [8], "out_dim": 8}},
    "trainer": {"epochs": 1, "batch_size": 8, "progress": False},
    "preset": "fast",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video")
    direction_table(folder, rows=16).to_csv(folder / "t.csv", index=False)
    (folder / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLAIT_CACHE_DIR", str(folder / "cache"))
        result = plait_in(
            "train", folder / "t.csv", "-l", "direction", "-c", folder / "c.yaml", "--out", folder / "run"
        )
    assert result.returncode == 0, result.stderr
    assert "clip:audio" in result.stderr + result.stdout and "video_cnn" in result.stderr + result.stdout
    return folder


def test_predict_with_the_video_or_its_sound_missing(trained: Path):
    folder = trained
    table = pd.read_csv(folder / "t.csv").iloc[:4].copy()
    table.loc[1, "clip"] = None  # no video at all: both inputs missing, a prediction still comes
    (folder / "p.csv").write_text(table.to_csv(index=False))
    assert (
        plait_in("predict", folder / "run", folder / "p.csv", "--output", folder / "out.csv").returncode == 0
    )
    out = pd.read_csv(folder / "out.csv")
    probs = out.filter(like="direction_prob_").to_numpy()
    assert len(out) == 4 and np.allclose(probs.sum(1), 1, atol=1e-5)
    processors = plait.load(folder / "run").processors
    present = {}
    for key in ("clip", "clip:audio"):
        processors[key].base_dir = folder
        present[key] = processors[key].transform(processors[key].select(table, key), key).present.tolist()
    # Rows 0 and 2 have sound, row 1 no clip, row 3 a mute clip: only its sound track is missing.
    assert present == {"clip": [True, False, True, True], "clip:audio": [True, False, True, False]}


@pytest.mark.slow  # robustness sweeps and importance: ~10 s
def test_robustness_explain_and_export(trained: Path):
    folder = trained
    result = plait_in("evaluate", folder / "run", folder / "t.csv", "--robustness", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {c["condition"] for c in found["missing"]} == {"without clip", "without clip:audio"}
    noise = {(n["input"], n["corruption"]) for n in found["noise"]}
    assert {("clip", "dropped_frames"), ("clip", "gaussian_noise"), ("clip:audio", "white_noise")} <= noise
    result = plait_in("explain", folder / "run", folder / "t.csv", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    # The clip and its sound track are two inputs, each of its own modality.
    assert {(i["input"], i["modality"]) for i in found["inputs"]} == {
        ("clip", "video"),
        ("clip:audio", "audio"),
    }
    assert {m["modality"] for m in found["modalities"]} == {"video", "audio"}
    result = plait_in("export", folder / "run", "--format", "onnx", "--output", folder / "m.onnx")
    assert result.returncode == 2
    assert "cannot export: input 'clip' is read from video files" in result.stderr


def test_serving_a_clip(trained: Path):
    folder = trained
    predictor = plait.load(folder / "run")
    clip = {"base64": base64.b64encode((folder / "clips/0.mp4").read_bytes()).decode()}
    with TestClient(create_app(predictor, ServeOptions(allow_dir=folder, max_upload_mb=1))) as client:
        schema = client.get("/schema").json()
        assert [(i["name"], i["type"]) for i in schema["inputs"]] == [("clip", "video")]
        response = client.post("/predict", json={"rows": [{"clip": clip}, {"clip": "clips/1.mp4"}]})
        assert response.status_code == 200, response.text
        expected = predictor.predict(pd.DataFrame({"clip": ["clips/0.mp4", "clips/1.mp4"]}), base_dir=folder)
        got = [p["direction"] for p in response.json()["predictions"]]
        assert got == expected["direction"].tolist()
        upload = {"clip": ("c.mp4", (folder / "clips/2.mp4").read_bytes(), "video/mp4")}
        assert client.post("/predict", files=upload).status_code == 200
        bad = client.post(
            "/predict", json={"rows": [{"clip": {"base64": base64.b64encode(b"nope").decode()}}]}
        )
        assert bad.status_code == 422 and "not a readable video file" in bad.text


def test_late_fusion_gives_the_clip_and_its_sound_track_a_head_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    table = direction_table(tmp_path, rows=16)
    predictor = plait.fit(
        table,
        label="direction",
        config={**CONFIG, "fusion": "late"},
        base_dir=tmp_path,
        out=tmp_path / "run",
        verbose=False,
    )
    assert list(predictor.model.heads["direction"].heads) == ["clip", "clip:audio"]
    rows = table.iloc[:3].copy()
    rows.loc[1, "clip"] = None  # no clip, so no sound track either: no head has an input
    probs = predictor.predict(rows, base_dir=tmp_path).filter(like="direction_prob_").to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and np.allclose(probs[1], 0.25)
    assert not np.allclose(probs[0], 0.25)


@pytest.mark.slow  # another training
def test_a_video_column_is_a_retrieval_tower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    table = direction_table(tmp_path, rows=16)
    table["caption"] = "a square moving " + table["direction"]
    config = {
        "inputs": [{**CONFIG["inputs"][0], "audio": False}, {"name": "caption", "type": "text"}],
        "outputs": [{"name": "pairs", "columns": ["clip", "caption"]}],
        "preset": "fast",
        "trainer": CONFIG["trainer"],
    }
    plait.fit(table, config=config, out=tmp_path / "run", verbose=False, base_dir=tmp_path)
    predictor = plait.load(tmp_path / "run")
    embeddings = predictor.embed(table.head(4), "clip", base_dir=tmp_path)
    assert embeddings.vectors.shape[0] == 4 and np.allclose(
        np.linalg.norm(embeddings.vectors, axis=1), 1, atol=1e-4
    )
    found = predictor.search("clips/0.mp4", table, top=3, base_dir=tmp_path)
    assert len(found) == 3 and set(found.columns) >= {"query", "rank", "caption"}


@pytest.mark.slow  # another training
def test_a_clip_can_be_captioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A text target over a video and its sound track: the decoder attends over the
    frames' tokens through the attention fusion."""
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    table = direction_table(tmp_path, rows=16)
    table["caption"] = "a square moving " + table["direction"]
    config = {
        **CONFIG,
        "outputs": [
            {
                "name": "caption",
                "type": "text",
                "head": {"name": "decoder", "dim": 16, "depth": 1, "heads": 2},
            }
        ],
        "fusion": "attention",
    }
    plait.fit(
        table.drop(columns="direction"), config=config, out=tmp_path / "run", verbose=False, base_dir=tmp_path
    )
    predicted = plait.load(tmp_path / "run").predict(table.head(3), base_dir=tmp_path)
    assert len(predicted) == 3 and predicted["caption"].map(lambda c: isinstance(c, str)).all()


def test_the_server_refuses_a_clip_declaring_huge_frames(trained: Path):
    from tests.video_clips import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 5120, 4096, "yuv420p"
        frame = av.VideoFrame(5120, 4096, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    predictor = plait.load(trained / "run")
    with TestClient(create_app(predictor, ServeOptions(max_upload_mb=1))) as client:
        clip = {"base64": base64.b64encode(buffer.getvalue()).decode()}
        response = client.post("/predict", json={"rows": [{"clip": clip}]})
    assert response.status_code == 422 and "20,971,520 pixels, over the 10,000,000 limit" in response.text

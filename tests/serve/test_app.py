"""The HTTP API through FastAPI's test client: good rows, batches, uploads, every bad request."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from plait.errors import DataError
from plait.serve import ServeOptions, create_app
from tests.serve.conftest import b64, reference

PROBS = ["colour_prob_blue", "colour_prob_green", "colour_prob_red"]


def check(response, reference: pd.DataFrame) -> None:
    assert response.status_code == 200, response.text
    got = pd.DataFrame(response.json()["predictions"])
    assert list(got.columns) == ["id", "colour", *PROBS]
    assert got["colour"].tolist() == reference["colour"].tolist()
    np.testing.assert_allclose(got[PROBS].to_numpy(float), reference[PROBS].to_numpy(float), atol=1e-5)
    np.testing.assert_allclose(got[PROBS].sum(axis=1), 1, atol=1e-5)


def test_json_batch_inline_paths_and_missing_inputs(client: TestClient, served):
    predictor, folder = served
    full = {"caption": "a red square number 0", "size": 0.1, "shop": "north"}
    rows = [
        {"id": "inline", "image": b64(folder / "images/0.png"), "voice": b64(folder / "audio/0.wav"), **full},
        {
            "id": "paths",
            "image": "images/1.png",
            "voice": "audio/1.wav",
            "caption": "a green square",
            "size": 2,
        },
        {"id": "text only", "caption": "a blue square number 2"},  # the rest is missing
        {"image": None, "caption": "", "shop": "west"},  # null, empty and an unseen category
    ]
    as_table = [
        {**rows[0], "image": "images/0.png", "voice": "audio/0.wav"},
        rows[1],
        rows[2],
        {"shop": "west"},
    ]
    response = client.post("/predict", json={"rows": rows})
    check(response, reference(predictor, folder, as_table))
    assert [p["id"] for p in response.json()["predictions"]] == ["inline", "paths", "text only", None]


def test_multipart_uploads_one_row_and_several(client: TestClient, served):
    predictor, folder = served
    files = {
        "image": ("photo.png", (folder / "images/4.png").read_bytes(), "image/png"),
        "voice": ("clip.wav", (folder / "audio/4.wav").read_bytes(), "audio/wav"),
    }
    response = client.post(
        "/predict", files=files, data={"id": "x", "caption": "a green thing", "size": "1.5"}
    )
    row = {
        "id": "x",
        "image": "images/4.png",
        "voice": "audio/4.wav",
        "caption": "a green thing",
        "size": 1.5,
    }
    check(response, reference(predictor, folder, [row]))

    files = {"rows[1].image": ("a.png", (folder / "images/5.png").read_bytes(), "image/png")}
    response = client.post("/predict", files=files, data={"rows[0].caption": "red", "rows[1].shop": "south"})
    cells = [{"caption": "red"}, {"image": "images/5.png", "shop": "south"}]
    check(response, reference(predictor, folder, cells))


def test_data_url_image(client: TestClient, served):
    predictor, folder = served
    url = "data:image/png;base64," + b64(folder / "images/2.png")["base64"]
    response = client.post("/predict", json={"rows": [{"image": url}]})
    check(response, reference(predictor, folder, [{"image": "images/2.png"}]))


def test_schema_health_and_openapi(client: TestClient):
    schema = client.get("/schema").json()
    assert [(i["name"], i["type"], i["required"]) for i in schema["inputs"]] == [
        ("image", "image", False),
        ("caption", "text", False),
        ("size", "numeric", False),
        ("shop", "category", False),
        ("voice", "audio", False),
    ]
    assert schema["ids"] == ["id"]
    assert schema["outputs"] == [
        {
            "name": "colour",
            "type": "category",
            "classes": ["blue", "green", "red"],
            "fields": ["colour", *PROBS],
        }
    ]
    assert set(schema["example"]["rows"][0]) == {"id", "image", "caption", "size", "shop", "voice"}
    assert schema["limits"]["max_upload_mb"] == 1
    assert client.get("/health").json()["status"] == "ok"
    body = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert client.get("/docs").status_code == 200


def png_bytes(folder: Path) -> bytes:
    return (folder / "images/3.png").read_bytes()


def form(**fields: str) -> dict:
    """Plain multipart fields (without files, httpx would send them urlencoded)."""
    return {"files": {name: (None, value) for name, value in fields.items()}}


BAD_REQUESTS = [
    ({"json": {"rows": [{"captoin": "x"}]}}, 422, "rows[0].captoin", "did you mean 'caption'"),
    ({"json": {}}, 422, "rows", "missing"),
    ({"json": {"rows": [{"caption": "x"}], "row": 1}}, 422, "row", "unknown field"),
    ({"json": {"rows": {"caption": "x"}}}, 422, "rows", "expected a list"),
    ({"json": {"rows": []}}, 422, "rows", "empty"),
    ({"json": {"rows": ["x"]}}, 422, "rows[0]", "expected an object"),
    ({"json": {"rows": [{}]}}, 422, "rows[0]", "no inputs"),
    ({"json": {"rows": [{"id": "only an id"}]}}, 422, "rows[0]", "no inputs"),
    ({"json": {"rows": [{"size": "big"}]}}, 422, "rows[0].size", "expected a number or null, got a string"),
    ({"json": {"rows": [{"size": True}]}}, 422, "rows[0].size", "expected a number"),
    ({"json": {"rows": [{"caption": 3}]}}, 422, "rows[0].caption", "expected text"),
    ({"json": {"rows": [{"shop": ["a"]}]}}, 422, "rows[0].shop", "got a list"),
    ({"json": {"rows": [{"image": {"base64": "aGVsbG8="}}]}}, 422, "rows[0].image", "not a readable image"),
    ({"json": {"rows": [{"image": {"base64": "%%%"}}]}}, 422, "rows[0].image", "not valid base64"),
    ({"json": {"rows": [{"image": {"url": "x"}}]}}, 422, "rows[0].image", 'expected {"base64"'),
    ({"json": {"rows": [{"image": 7}]}}, 422, "rows[0].image", "got a number"),
    ({"json": {"rows": [{"image": "data:image/png,abc"}]}}, 422, "rows[0].image", "base64-encoded"),
    ({"json": {"rows": [{"image": "images/none.png"}]}}, 422, "rows[0].image", "no file 'images/none.png'"),
    ({"json": {"rows": [{"voice": "images/0.png"}]}}, 422, "rows[0].voice", "not a readable audio file"),
    ({"json": {"rows": [{"caption": "x"}] * 257}}, 422, "rows", "257 rows, over the limit of 256"),
    (
        {"files": {"voice": ("a.wav", b"RIFF0000WAVE", "audio/wav")}},
        422,
        "rows[0].voice",
        "not a readable audio",
    ),
    ({"files": {"voice": ("a.wav", b"", "audio/wav")}}, 422, "rows[0].voice", "the audio file is empty"),
    ({"files": {"caption": ("a.txt", b"hello", "text/plain")}}, 422, "rows[0].caption", "got a file upload"),
    (form(size="abc"), 422, "rows[0].size", "expected a number, got 'abc'"),
    (form(**{"caption": "x", "rows[0].caption": "y"}), 422, "rows[0].caption", "given twice"),
    (form(**{"rows[300].caption": "x"}), 422, "rows[300].caption", "over the limit"),
    ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "body", "not valid JSON"),
    ({"content": b"[1]", "headers": {"content-type": "application/json"}}, 422, "body", "expected an object"),
    ({"content": b"caption=x", "headers": {"content-type": "text/plain"}}, 415, "body", "content type"),
    (
        {"content": b'{"rows": []}', "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
        "body",
        "curl -d",
    ),
    ({"content": b"x", "headers": {"content-type": "multipart/form-data"}}, 400, "body", "not a valid form"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "field", "problem"), BAD_REQUESTS)
def test_bad_request_names_the_field(client: TestClient, request_kwargs, status, field, problem):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status, response.text
    details = response.json()["detail"]
    assert any(d["field"] == field and problem in d["problem"] for d in details), details


def test_every_problem_is_reported_at_once(client: TestClient):
    rows = [{"caption": "fine"}, {"size": "x", "colour": "red"}]
    details = client.post("/predict", json={"rows": rows}).json()["detail"]
    assert [d["field"] for d in details] == ["rows[1].size", "rows[1].colour"]
    details = client.post("/predict", json={"rows": [{"size": "x"}] * 30}).json()["detail"]
    assert len(details) == 21 and details[-1] == {"field": "rows", "problem": "... and 10 more problem(s)"}
    assert client.post("/predict", json={"rows": [{"caption": "still serving"}]}).status_code == 200


def test_oversized_body_is_413(client: TestClient):
    big = {"rows": [{"image": {"base64": base64.b64encode(os.urandom(1_200_000)).decode()}}]}
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert response.json()["detail"][0]["field"] == "body"
    assert "1 MB limit (--max-upload-mb)" in response.json()["detail"][0]["problem"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * 100_000

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["detail"][0]["field"] == "body"


def test_paths_refused_without_allow_dir(served):
    predictor, _ = served
    with TestClient(create_app(predictor)) as client:
        response = client.post("/predict", json={"rows": [{"image": "images/0.png"}]})
    assert response.status_code == 422
    assert "--allow-dir" in response.json()["detail"][0]["problem"]


def test_path_traversal_refused(served, tmp_path: Path):
    predictor, folder = served
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    image = png_bytes(folder)
    (allowed / "sub" / "ok.png").write_bytes(image)
    (tmp_path / "secret.png").write_bytes(image)  # a real image, so only the place is wrong
    (allowed / "link.png").symlink_to(tmp_path / "secret.png")
    (allowed / "sub" / "up").symlink_to(tmp_path)
    outside = [
        "../secret.png",
        "sub/../../secret.png",
        str(tmp_path / "secret.png"),
        "link.png",
        "sub/up/secret.png",
        "/etc/passwd",
    ]
    with TestClient(create_app(predictor, ServeOptions(allow_dir=allowed))) as client:
        for path in outside:
            response = client.post("/predict", json={"rows": [{"image": path}]})
            assert response.status_code == 422, path
            assert "outside the allowed folder" in response.json()["detail"][0]["problem"], path
        (allowed / "loop.png").symlink_to(allowed / "loop.png")
        for path, problem in (("loop.png", "cannot use path"), ("a\x00b.png", "cannot use path")):
            response = client.post("/predict", json={"rows": [{"image": path}]})
            assert response.status_code == 422 and problem in response.json()["detail"][0]["problem"]
        for path in ("sub/ok.png", str(allowed / "sub" / "ok.png"), "sub/../sub/ok.png"):
            assert client.post("/predict", json={"rows": [{"image": path}]}).status_code == 200, path


def test_model_errors_are_4xx_or_500_and_the_server_survives(client: TestClient, served, monkeypatch):
    predictor, _ = served
    good = {"rows": [{"caption": "a red square"}]}

    def refuse(*args, **kwargs):
        raise DataError("column 'caption', row 1: something the model refuses")

    monkeypatch.setattr(predictor, "predict", refuse)
    response = client.post("/predict", json=good)
    assert response.status_code == 422
    # An error about one cell names its field (row N of the request is rows[N-1]).
    refused = {"field": "rows[0].caption", "problem": "something the model refuses"}
    assert response.json()["detail"] == [refused]

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(predictor, "predict", crash)
    response = client.post("/predict", json=good)
    assert response.status_code == 500 and response.json()["detail"][0]["problem"].startswith(
        "internal error"
    )
    monkeypatch.undo()
    assert client.post("/predict", json=good).status_code == 200

"""/docs works offline, and a model error about one cell names that cell's field."""

from __future__ import annotations

import base64
import io
import re

from fastapi.testclient import TestClient
from PIL import Image

from plait.serve.requests import model_problem


def test_docs_pages_load_nothing_from_elsewhere(client: TestClient):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assert "https://" not in html.text and "http://" not in html.text, page
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html.text):
            response = client.get(asset)
            assert response.status_code == 200 and len(response.content) > 1000, asset
    assert "swagger-ui-bundle.js" in client.get("/docs").text


def test_an_oversized_image_names_its_field_not_a_temporary_path(client: TestClient, served, monkeypatch):
    predictor, _ = served
    monkeypatch.setattr(predictor.processors["image"], "max_pixels", 10_000)
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(buffer, "PNG")
    rows = [{"caption": "fine"}, {"image": {"base64": base64.b64encode(buffer.getvalue()).decode()}}]
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["field"] == "rows[1].image"
    assert detail["problem"].startswith("image too large to decode (200×200 = 40,000 pixels)")
    assert "plait-serve-" not in detail["problem"] and "/tmp" not in detail["problem"]


def test_model_problems_without_a_cell_stay_on_the_rows():
    assert model_problem("something about every row").field == "rows"
    problem = model_problem("column 'shop', row 3: unseen value")
    assert (problem.field, problem.problem) == ("rows[2].shop", "unseen value")

"""`plait serve`, the real command: fails fast on a bad run, serves a good one."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from plait.errors import PlaitError
from plait.serve import ServeOptions

PLAIT = [sys.executable, "-m", "plait.cli"]


@pytest.mark.slow
def test_bad_run_folder_exits_2_with_one_line(tmp_path: Path):
    result = subprocess.run(
        [*PLAIT, "serve", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == f"error: run folder not found: {tmp_path / 'nope'}\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_dir": Path("nowhere")}, "--allow-dir must be an existing folder, got 'nowhere'"),
        ({"max_batch": 0}, "--max-batch must be an integer ≥ 1"),
        ({"max_wait_ms": -1.0}, "--max-wait-ms must be ≥ 0"),
        ({"max_upload_mb": 0.0}, "--max-upload-mb must be > 0"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict, message: str):
    with pytest.raises(PlaitError, match=re.escape(message)):
        ServeOptions(**options).checked()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serves_predictions_over_http(served):
    predictor, folder = served
    port = free_port()
    command = [*PLAIT, "serve", str(predictor.run_dir), "--port", str(port), "--allow-dir", str(folder)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                time.sleep(0.2)
        rows = [{"id": "a", "image": "images/0.png", "caption": "a red square"}, {"caption": "blue"}]
        response = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=30)
        assert response.status_code == 200, response.text
        assert [p["id"] for p in response.json()["predictions"]] == ["a", None]
        bad = httpx.post(f"{url}/predict", json={"rows": [{"image": "../t.csv"}]}, timeout=30)
        assert bad.status_code == 422
    finally:
        server.terminate()
        server.wait(timeout=30)

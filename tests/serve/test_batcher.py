"""Micro-batching: concurrent callers share model calls and each gets its own rows back."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from plait.serve import ServeOptions, create_app
from plait.serve.batcher import MicroBatcher
from tests.serve.conftest import b64, reference

PROBS = ["colour_prob_blue", "colour_prob_green", "colour_prob_red"]


def test_concurrent_requests_each_get_their_own_prediction(served):
    predictor, folder = served
    table = pd.read_csv(folder / "t.csv").head(16)
    cells = table[["id", "image", "caption", "size", "shop", "voice"]].to_dict(orient="records")
    cells = [{k: v for k, v in c.items() if isinstance(v, str) or v == v} for c in cells]  # no NaN
    # Inline files for even rows, paths for odd ones: every caller's row is different.
    rows = [
        {**c, "image": b64(folder / c["image"]), "voice": b64(folder / c["voice"])}
        if i % 2 == 0 and "image" in c
        else c
        for i, c in enumerate(cells)
    ]
    expected = reference(predictor, folder, cells).set_index("id")

    app = create_app(predictor, ServeOptions(max_batch=64, max_wait_ms=200, allow_dir=folder))
    with TestClient(app) as client, ThreadPoolExecutor(len(rows)) as pool:
        responses = list(pool.map(lambda row: client.post("/predict", json={"rows": [row]}), rows))
    calls = app.state.batcher.requests_per_call
    assert max(calls) > 1, calls  # some model call served several callers
    assert sum(n * count for n, count in calls.items()) == len(rows)
    for row, response in zip(rows, responses, strict=True):
        assert response.status_code == 200, response.text
        [prediction] = response.json()["predictions"]
        assert prediction["id"] == row["id"]
        mine = expected.loc[row["id"]]
        assert prediction["colour"] == mine["colour"]
        np.testing.assert_allclose([prediction[p] for p in PROBS], mine[PROBS].astype(float), atol=1e-5)


class Recorder:
    """A fake model: y = 2x, remembering the x of every call; x < 0 fails the call."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if (frame["x"] < 0).any():
            raise ValueError("negative x")
        self.calls.append(frame["x"].tolist())
        return pd.DataFrame({"y": frame["x"] * 2})


async def submit_all(batcher: MicroBatcher, sizes: list[int]) -> list[pd.DataFrame | BaseException]:
    """One request of `sizes[k]` rows per caller, all at once; x encodes (caller, row)."""
    await batcher.start()
    try:
        frames = [pd.DataFrame({"x": [100 * k + r for r in range(n)]}) for k, n in enumerate(sizes)]
        return await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
    finally:
        await batcher.stop()


@pytest.mark.parametrize(("max_batch", "max_wait_ms"), [(8, 50.0), (8, 0.0), (1, 50.0)])
def test_batches_never_split_a_request_nor_overflow(max_batch: int, max_wait_ms: float):
    model = Recorder()
    sizes = [1, 3, 2, 5, 1, 12, 1, 1]
    results = asyncio.run(submit_all(MicroBatcher(model, max_batch, max_wait_ms), sizes))
    for k, (n, result) in enumerate(zip(sizes, results, strict=True)):
        assert result["y"].tolist() == [2 * (100 * k + r) for r in range(n)]  # its own rows, in order
    assert sorted(x for call in model.calls for x in call) == sorted(
        100 * k + r for k, n in enumerate(sizes) for r in range(n)
    )
    callers = [{x // 100 for x in call} for call in model.calls]
    # A call holds at most max_batch rows, or one request that alone is larger (never split).
    assert all(
        len(call) <= max_batch or len(who) == 1 for call, who in zip(model.calls, callers, strict=True)
    )
    if max_batch == 1:
        assert all(len(who) == 1 for who in callers)  # micro-batching off: one call per request
    elif max_wait_ms:
        assert len(model.calls) < len(sizes)


def test_a_failing_request_fails_alone():
    model = Recorder()

    async def run() -> list:
        batcher = MicroBatcher(model, max_batch=16, max_wait_ms=50)
        await batcher.start()
        try:
            frames = [pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [-1]}), pd.DataFrame({"x": [3]})]
            return await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
        finally:
            await batcher.stop()

    good, bad, other = asyncio.run(run())
    assert good["y"].tolist() == [2, 4] and other["y"].tolist() == [6]
    assert isinstance(bad, ValueError)


def test_submit_before_start_is_refused():
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(MicroBatcher(Recorder()).submit(pd.DataFrame({"x": [1]})))

"""The HTTP app over a Predictor: POST /predict, GET /schema, GET /health, /docs.

/docs (Swagger UI) and /redoc load their scripts from the server itself
(fastapi-offline ships them), so they work with no internet access.

Bad requests get a 4xx with `{"detail": [{"field": ..., "problem": ...}]}`: 400
malformed body, 413 over the size limit, 415 wrong content type, 422 anything wrong
with the rows (unknown field, wrong type, undecodable file, refused path) or refused
by the model (a PlaitError). An unexpected exception is logged and answered with a
500 in the same shape; the server keeps serving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

import plait
from plait.config import BOX_TYPES
from plait.errors import PlaitError
from plait.predictor import Predictor
from plait.serve.batcher import MicroBatcher
from plait.serve.limits import BodyLimit
from plait.serve.media import MediaFiles
from plait.serve.options import ServeOptions
from plait.serve.requests import BadRequest, Problem, model_problem, read_rows, to_frame
from plait.serve.schema import ServeSpec

logger = logging.getLogger("plait.serve")


class Predictions(BaseModel):
    predictions: list[dict[str, Any]]  # one per row, in order: ids, labels, <target>_prob_<class>


class Problems(BaseModel):
    detail: list[Problem]


def create_app(predictor: Predictor, options: ServeOptions | None = None) -> FastAPI:
    """The app; its lifespan starts and stops the micro-batcher (use TestClient as a
    context manager)."""
    options = (options or ServeOptions()).checked()
    spec = ServeSpec.from_predictor(predictor)

    def run_model(frame: pd.DataFrame) -> pd.DataFrame:  # in the batcher's worker thread
        with torch.inference_mode():
            return predictor.predict(frame)

    batcher = MicroBatcher(run_model, options.max_batch, options.max_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPIOffline(
        title=f"Plait: {spec.run}",
        version=plait.__version__,
        description="Predictions of a Plait run. GET /schema lists the inputs and outputs.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=options.max_bytes)
    app.state.batcher = batcher

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Problems, "description": text}
        for code, text in (
            (400, "malformed body"),
            (413, "body over --max-upload-mb"),
            (415, "not JSON or multipart"),
            (422, "bad rows"),
        )
    }

    @app.post(
        "/predict",
        response_model=Predictions,
        responses=errors,
        openapi_extra=spec.openapi_body(),
        summary="Predict one or more rows",
    )
    async def predict(request: Request) -> JSONResponse:
        media = MediaFiles(options.allow_dir, options.max_bytes)
        try:
            rows, from_form = await read_rows(request, options.max_rows)
            frame = await run_in_threadpool(to_frame, rows, spec, media, from_form)  # decodes media
            result = await batcher.submit(frame)
            records = json.loads(result.to_json(orient="records"))
            for record in records:  # boxes as JSON arrays, not the text a table file holds
                record.update(
                    {
                        o.name: json.loads(record[o.name] or "null")
                        for o in spec.outputs
                        if o.type in BOX_TYPES
                    }
                )
            return JSONResponse({"predictions": records})
        except BadRequest as error:
            return JSONResponse(error.body(), error.status)
        except PlaitError as error:  # named by its cell, without the server's temporary paths
            return JSONResponse(BadRequest(422, [model_problem(media.hide(str(error)))]).body(), 422)
        except Exception:
            logger.exception("/predict failed")
            body = BadRequest.one(
                500, "body", "internal error while predicting (logged by the server)"
            ).body()
            return JSONResponse(body, 500)
        finally:
            await run_in_threadpool(media.close)

    @app.get("/schema", summary="The inputs a request may hold and the outputs it gets")
    async def schema() -> dict[str, Any]:
        return spec.describe(options)

    @app.get("/health", summary="Liveness, with the queue length and how full batches were")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "run": spec.run,
            "queued": batcher.queued,
            "requests_per_call": dict(sorted(batcher.requests_per_call.items())),
        }

    return app

"""Serving a run over HTTP (FastAPI + uvicorn; `pip install 'plait[serve]'`).

app.py      create_app(predictor, options) → FastAPI: /predict, /schema, /health, /docs
batcher.py  micro-batching of concurrent requests into one model call
requests.py request bodies (JSON or multipart) → validated rows
media.py    inline and path media → checked files in a per-request folder
limits.py   the request body limit
schema.py   what a run expects and returns
options.py  ServeOptions (batch size and wait, allowed folder, limits)
server.py   `plait serve`: uvicorn, one or several worker processes
"""

from plait.serve.app import create_app
from plait.serve.options import ServeOptions

__all__ = ["ServeOptions", "create_app"]

"""`plait serve`: load the run (failing fast on a bad one), then run uvicorn.

With several workers uvicorn starts each process from an import string, so the run
folder and options travel in an environment variable and `app_from_env` rebuilds the
app in every worker (each holds its own model and batcher).
"""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import os
import socket
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI

from plait.errors import PlaitError
from plait.predictor import Predictor
from plait.serve.app import create_app
from plait.serve.options import ServeOptions

_ENV = "PLAIT_SERVE_SETTINGS"


def default_threads(workers: int) -> int:
    """Torch threads per worker: the usable cores shared among the workers, one per worker
    left for HTTP and decoding. More threads than free cores make OpenMP's busy-waiting
    collapse (docs/benchmarks.md: 16-row requests 8× slower with 2 threads on 2 busy cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers - 1)


def serve(
    run: Path, host: str, port: int, workers: int, options: ServeOptions, threads: int | None = None
) -> None:
    if not (isinstance(workers, int) and workers >= 1):
        raise PlaitError(f"--workers must be an integer ≥ 1, got {workers!r}")
    if threads is not None and threads < 1:
        raise PlaitError(f"--threads must be ≥ 1, got {threads}")
    if not 0 <= port <= 65535:
        raise PlaitError(f"--port must be in 0..65535, got {port}")
    threads = threads or default_threads(workers)
    options = options.checked()
    app = create_app(Predictor.load(run), options)  # a bad run folder stops here, in one line
    check_port(host, port)  # else uvicorn logs six lines and exits with 3
    if workers == 1:
        torch.set_num_threads(threads)
        uvicorn.run(app, host=host, port=port)
        return
    settings = {**dataclasses.asdict(options), "allow_dir": options.allow_dir and str(options.allow_dir)}
    os.environ[_ENV] = json.dumps({"run": str(Path(run).resolve()), "threads": threads, "options": settings})
    # A worker importing torch can hold the GIL past uvicorn's 5 s health-check ping and
    # be restarted as dead; newer uvicorn versions let the wait be longer.
    patience = {"timeout_worker_healthcheck": 60}
    if "timeout_worker_healthcheck" not in inspect.signature(uvicorn.Config).parameters:
        patience = {}
    uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers, **patience)


def check_port(host: str, port: int) -> None:
    """A PlaitError if uvicorn could not listen on host:port (taken, privileged, or an
    address this machine does not have): bound as uvicorn binds, then let go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except (socket.gaierror, UnicodeError) as err:
            detail = getattr(err, "strerror", None) or err
            raise PlaitError(f"--host {host}: not an address this machine can listen on ({detail})") from None
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise PlaitError(f"--host {host} is not an address of this machine") from None
            if err.errno == errno.EADDRINUSE:
                problem = "is already in use; stop what listens there or choose another --port"
            elif err.errno == errno.EACCES:
                problem = "needs privileges (ports below 1024); choose another --port"
            else:
                problem = f"cannot be listened on ({err.strerror})"
            raise PlaitError(f"port {port} on {host} {problem}") from None


def app_from_env() -> FastAPI:
    settings = json.loads(os.environ[_ENV])
    torch.set_num_threads(settings["threads"])
    options = settings["options"]
    allow = options.pop("allow_dir")
    options = ServeOptions(**options, allow_dir=Path(allow) if allow else None)
    return create_app(Predictor.load(settings["run"]), options)

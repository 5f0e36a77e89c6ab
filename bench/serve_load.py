"""Load test of `plait serve` (issue 9): throughput and latency, micro-batching on and off.

    .venv/bin/python -m bench.serve_load [--requests 400] [--concurrency 16] [--rows 16] [--threads N]

Trains the demo's reference model on easy-VQA for one epoch (`plait demo --epochs 1`;
or `--run FOLDER` to reuse one), then for each scenario starts `plait serve` in a
subprocess on 127.0.0.1 (a free port) and drives it with a bounded client on the same
machine: `--concurrency` callers send `--requests` requests in all (after a warm-up),
stopping early at `--duration` seconds. Each request holds 1 or `--rows` easy-VQA test
rows, the 64×64 PNG inline as base64 and the question as text, bodies encoded before
timing. Micro-batching on: `--max-batch 64 --max-wait-ms 5`; off: `--max-batch 1`.
Prints one markdown table: requests/s, rows/s, latency percentiles, and how many
requests each model call served (from /health).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import command_line, plait_cli
from plait.data.builtin import easy_vqa

SCENARIOS = [  # (rows per request, micro-batching)
    (1, True),
    (1, False),
    ("rows", True),
    ("rows", False),
]
BATCHING = {True: ["--max-batch", "64", "--max-wait-ms", "5"], False: ["--max-batch", "1"]}


def bodies(rows_per_request: int, count: int) -> list[bytes]:
    """`count` JSON bodies of easy-VQA test rows (cycling), images inline as base64."""
    frame = easy_vqa()
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    images: dict[str, str] = {}
    out = []
    for k in range(count):
        rows = []
        for r in range(rows_per_request):
            row = test.iloc[(k * rows_per_request + r) % len(test)]
            if row["image"] not in images:
                images[row["image"]] = base64.b64encode(Path(row["image"]).read_bytes()).decode()
            rows.append({"image": {"base64": images[row["image"]]}, "question": row["question"]})
        out.append(json.dumps({"rows": rows}).encode())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, batching: bool, threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = ["serve", str(run), "--port", str(port), *BATCHING[batching]]
    args += ["--threads", str(threads)] if threads else []
    server = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"plait serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    sys.exit("plait serve did not start within 120 s")


async def drive(
    url: str, payloads: list[bytes], concurrency: int, duration: float
) -> tuple[list[float], float]:
    """Send every payload once, `concurrency` at a time; latencies (s) and wall seconds."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        queue = list(reversed(payloads))
        start = time.perf_counter()

        async def caller() -> None:
            while queue and time.perf_counter() - start < duration:
                body = queue.pop()
                sent = time.perf_counter()
                response = await client.post("/predict", content=body, headers=headers)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    sys.exit(f"request failed ({response.status_code}): {response.text[:500]}")

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="timed requests per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="callers at once")
    parser.add_argument("--rows", type=int, default=16, help="rows per batched request")
    parser.add_argument("--duration", type=float, default=120, help="cap on each scenario's seconds")
    parser.add_argument("--warmup", type=int, default=32, help="untimed requests first")
    parser.add_argument("--run", type=Path, help="a trained easy-VQA run (default: train one)")
    parser.add_argument("--threads", type=int, help="plait serve --threads (default: its default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            print(f"training: {command_line('demo', '--epochs', '1', '--out', run)}", file=sys.stderr)
            plait_cli("demo", "--epochs", "1", "--out", run)
        print(
            "| request | micro-batching | requests | requests/s | rows/s | p50 ms | p95 ms | p99 ms "
            "| requests per model call |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for rows, batching in SCENARIOS:
            n_rows = args.rows if rows == "rows" else int(rows)
            payloads = bodies(n_rows, args.warmup + args.requests)
            server, url = start_server(run, batching, args.threads)
            try:
                asyncio.run(drive(url, payloads[: args.warmup], args.concurrency, args.duration))
                before = httpx.get(f"{url}/health").json()["requests_per_call"]
                timed = payloads[args.warmup :]
                latencies, seconds = asyncio.run(drive(url, timed, args.concurrency, args.duration))
                after = httpx.get(f"{url}/health").json()["requests_per_call"]
            finally:
                server.terminate()
                server.wait(timeout=30)
            calls = {int(k): v - before.get(k, 0) for k, v in after.items()}
            served = sum(k * v for k, v in calls.items())
            per_call = served / max(1, sum(calls.values()))
            ms = [1000 * v for v in latencies]
            cells = [
                f"{n_rows} row{'s' if n_rows > 1 else ''}",
                "on" if batching else "off",
                str(len(ms)),
                f"{len(ms) / seconds:.1f}",
                f"{len(ms) * n_rows / seconds:.0f}",
                *(f"{percentile(ms, q):.1f}" for q in (50, 95, 99)),
                f"{per_call:.2f} (max {max(calls)})",
            ]
            print(f"| {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()

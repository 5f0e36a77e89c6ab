"""Micro-batching: rows of concurrent requests → one model call → each caller its rows.

Requests wait in an asyncio queue. The worker takes the first, then keeps taking
more until the batch holds `max_batch` rows or `max_wait_ms` has passed since it
started collecting; requests that arrived while the model was busy are already
queued, so under load batches fill without waiting. A request is never split: one
that would overflow the batch opens the next, one larger than `max_batch` runs
alone. The model runs in one worker thread (the event loop keeps accepting
requests) and one batch at a time (processors hold per-call state). When a merged
batch fails, each of its requests is run alone, so one caller's error is never
another's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd


@dataclass
class _Job:
    frame: pd.DataFrame
    future: asyncio.Future[pd.DataFrame]


class MicroBatcher:
    def __init__(
        self, predict: Callable[[pd.DataFrame], pd.DataFrame], max_batch: int = 32, max_wait_ms: float = 5.0
    ) -> None:
        self.predict = predict  # rows → one result row per row, in order
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.requests_per_call: Counter[int] = Counter()  # how full the batches were
        self._queue: asyncio.Queue[_Job] | None = None
        self._carry: _Job | None = None  # taken from the queue, opens the next batch
        self._running: list[_Job] = []  # the batch in the model now
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        return (self._queue.qsize() if self._queue else 0) + (self._carry is not None)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="plait-predict")
        self._task = asyncio.create_task(self._work(), name="plait-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        pending = [*self._running, *([self._carry] if self._carry else [])]
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._queue = self._carry = self._executor = None

    async def submit(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The predictions for `frame`'s rows (index 0..n-1), once its batch has run."""
        if self._queue is None:
            raise RuntimeError("the batcher is not running; call start() (the app's lifespan does)")
        job = _Job(frame.reset_index(drop=True), asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _work(self) -> None:
        while True:
            self._running = await self._collect()
            await self._run(self._running)
            self._running = []

    async def _collect(self) -> list[_Job]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        first, self._carry = self._carry or await self._queue.get(), None
        jobs, rows = [first], len(first.frame)
        deadline = loop.time() + self.max_wait
        while rows < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
                    break
            if rows + len(job.frame) > self.max_batch:
                self._carry = job
                break
            jobs.append(job)
            rows += len(job.frame)
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # callers that gave up
        if not jobs:
            return
        loop = asyncio.get_running_loop()
        try:
            frame = jobs[0].frame if len(jobs) == 1 else pd.concat([j.frame for j in jobs], ignore_index=True)
            result = await loop.run_in_executor(self._executor, self.predict, frame)
            if len(result) != len(frame):
                raise RuntimeError(f"the model returned {len(result)} rows for {len(frame)}")
        except Exception as err:
            if len(jobs) == 1:
                _settle(jobs[0], error=err)
            else:  # isolate the request at fault
                for job in jobs:
                    await self._run([job])
            return
        self.requests_per_call[len(jobs)] += 1
        start = 0
        for job in jobs:
            end = start + len(job.frame)
            _settle(job, result.iloc[start:end].reset_index(drop=True))
            start = end


def _settle(job: _Job, result: pd.DataFrame | None = None, error: BaseException | None = None) -> None:
    if job.future.done():  # cancelled meanwhile
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)  # type: ignore[arg-type]

"""Adaptive micro-batching: requests for one deployment that arrive together share one model call.

Everything runs on the event loop. A request adds its rows and waits; the first one schedules a flush
for the loop's next turn. Each turn the loop also reads whatever the network has delivered, so while
requests keep joining, the flush steps aside for another turn (at most ``max_turns``) and runs the model
once the queue stops growing. Under light load a request waits one idle turn; under load the model's
fixed cost per call is shared by as many requests as arrive together. A batch whose call fails is
retried request by request, so one bad request fails alone.

A batch of a size ``off_loop`` names (one a compiled predictor that releases the GIL was measured at load
to take milliseconds on, as a large batch for a big tree ensemble does) is predicted on a worker thread
instead, one such batch at a time, so the loop goes on reading and answering other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["Batcher"]

_PLAIN = frozenset({np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)})
"""Answers handed on as Python values: faster to serialise than numpy slices, and a float32 becomes the
float64 of its exact value, the digits MLflow's scoring server prints for it."""


class Batcher:
    """Batches float matrices for one model on one event loop."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], Any],
        loop: asyncio.AbstractEventLoop,
        max_rows: int,
        max_turns: int = 16,
        on_call: Callable[[], None] | None = None,
        off_loop: Callable[[int], bool] | None = None,
    ) -> None:
        self.predict = predict
        self.off_loop = off_loop
        self._threads: ThreadPoolExecutor | None = None
        self._in_flight = 0  # batches on the worker thread
        self.loop = loop
        self.max_rows = max_rows
        self.max_turns = max_turns
        self.on_call = on_call
        self.calls = 0
        self._pending: deque[tuple[np.ndarray, asyncio.Future[Any]]] = deque()
        self._rows = 0
        self._scheduled = False
        self._seen = 0
        self._turns = 0

    def submit(self, rows: np.ndarray) -> asyncio.Future[Any]:
        """Queue ``rows``; the future resolves to their predictions."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((rows, future))
        self._rows += rows.shape[0]
        if not self._scheduled:
            self._scheduled = True
            self._seen, self._turns = 0, 0
            self.loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        waiting = len(self._pending)
        if waiting > self._seen and self._turns < self.max_turns and self._rows < self.max_rows:
            self._seen, self._turns = waiting, self._turns + 1
            self.loop.call_soon(self._flush)  # more arrived last turn: give the rest a turn to join
            return
        if self._in_flight and self.off_loop is not None and self.off_loop(min(self._rows, self.max_rows)):
            # Another slow batch would queue behind the one on the worker thread: let it grow meanwhile
            # instead, as requests pile up while the loop itself predicts; that batch's end flushes it.
            self._scheduled = False
            return
        pending = self._take()
        if self._pending:
            self._seen, self._turns = 0, 0
            self.loop.call_soon(self._flush)
        else:
            self._scheduled = False
        if len(pending) == 1:
            self._run_one(*pending[0])
            return
        self._run_batch(pending)

    def _slow(self, rows: np.ndarray) -> bool:
        return self.off_loop is not None and self.off_loop(rows.shape[0])

    def _off_loop(self, rows: np.ndarray, then: Callable[[asyncio.Future[Any]], None]) -> None:
        """Predict ``rows`` on a worker thread and call ``then`` with the outcome on the loop."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopline-predict")
        self._in_flight += 1

        def done(outcome: asyncio.Future[Any]) -> None:
            self._in_flight -= 1
            then(outcome)
            if self._pending and not self._scheduled:
                self._scheduled = True
                self._seen, self._turns = 0, 0
                self.loop.call_soon(self._flush)

        self.loop.run_in_executor(self._threads, self.predict, rows).add_done_callback(done)

    def _run_batch(self, pending: list[tuple[np.ndarray, asyncio.Future[Any]]]) -> None:
        rows = np.concatenate([rows for rows, _ in pending])
        self._count()
        if self._slow(rows):
            self._off_loop(rows, lambda done: self._deliver(pending, done.exception() or done.result()))
            return
        try:
            answers: Any = self.predict(rows)
        except Exception as exc:
            answers = exc
        self._deliver(pending, answers)

    def _deliver(self, pending: list[tuple[np.ndarray, asyncio.Future[Any]]], outcome: Any) -> None:
        """Hand each request its slice of a batch's answers; retry one by one if the batch failed, so only
        the requests that make the model fail do fail."""
        sizes = [rows.shape[0] for rows, _ in pending]
        answers = None if isinstance(outcome, BaseException) else np.asarray(outcome)
        if answers is None or answers.shape[0] != sum(sizes):
            for rows, future in pending:
                self._run_one(rows, future)
            return
        values = answers.tolist() if answers.dtype in _PLAIN and answers.ndim == 1 else answers
        start = 0
        for (_, future), size in zip(pending, sizes, strict=True):
            if not future.done():
                future.set_result(values[start : start + size])
            start += size

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future[Any]]]:
        taken: list[tuple[np.ndarray, asyncio.Future[Any]]] = []
        rows = 0
        while self._pending and (not taken or rows + self._pending[0][0].shape[0] <= self.max_rows):
            item = self._pending.popleft()
            taken.append(item)
            rows += item[0].shape[0]
        self._rows -= rows
        return taken

    def _count(self) -> None:
        self.calls += 1
        if self.on_call is not None:
            self.on_call()

    def _run_one(self, rows: np.ndarray, future: asyncio.Future[Any]) -> None:
        if future.done():
            return
        self._count()
        if self._slow(rows):
            self._off_loop(rows, lambda done: _settle(future, done))
            return
        try:
            future.set_result(self.predict(rows))
        except Exception as exc:
            future.set_exception(exc)


def _settle(future: asyncio.Future[Any], done: asyncio.Future[Any]) -> None:
    if future.done():
        return
    failure = done.exception()
    if failure is None:
        future.set_result(done.result())
    else:
        future.set_exception(failure)

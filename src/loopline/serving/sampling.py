"""What a serving process keeps for monitoring: a rate-limited sample of scored rows and their answers.

The rate counts rows, not requests: a token bucket of ``monitoring.sample_per_second`` rows, so a stream of
100-row requests is sampled no faster than one of single rows (a sampled request gives as many of its rows,
picked at random, as there are tokens). Sampling costs the hot path one comparison unless a request is
taken (the serving loop refills the bucket several times a second, so the hot path reads no clock); taken
rows are queued in memory and written once a second from a worker thread, and each deployment keeps only
its newest ``monitoring.sample_size`` rows. Endpoints created with ``--sensitive`` are never sampled.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select

from loopline.state import Database
from loopline.state.schema import monitor_samples

__all__ = ["Sampler"]


class Sampler:
    """A token bucket of ``per_second`` rows, and the queue of taken rows."""

    def __init__(self, db: Database, per_second: float, keep: int, workspace: str = "prod") -> None:
        self.db = db
        self.workspace = workspace
        self.per_second = per_second
        self.keep = keep
        self._rate = per_second if per_second > 0 and keep > 0 else 0.0  # rows a second actually taken
        self._tokens = self._rate
        self._last = time.monotonic()
        self._queue: list[dict[str, Any]] = []
        self._random = random.Random()

    def wants(self) -> bool:
        """Whether to take (some of the rows of) the request being answered; :meth:`refill` adds tokens."""
        return self._tokens >= 1

    def refill(self) -> None:
        """Add the tokens earned since the last refill; the serving loop calls this several times a second."""
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now

    def take(self, endpoint: str, deployment: str, columns: list[str], data: Any, answers: Any) -> None:
        """Queue rows of one request with their predictions: all of them, or as many as there are tokens."""
        frame = hasattr(data, "to_numpy") and not isinstance(data, np.ndarray)
        matrix: Any = data if frame else np.asarray(data)
        if not frame and matrix.ndim == 1:  # one value a row (texts to a model without a signature)
            matrix = matrix.reshape(-1, 1)
        count = len(matrix)
        budget = min(count, int(self._tokens))
        if budget < 1:
            return
        self._tokens -= budget
        picked = sorted(self._random.sample(range(count), budget)) if budget < count else None
        if picked is not None:
            matrix = matrix.iloc[picked] if frame else matrix[picked]
        rows = matrix.astype(object).to_numpy().tolist() if frame else matrix.tolist()
        names = columns or [str(c) for c in getattr(data, "columns", range(len(rows[0]) if rows else 0))]
        if hasattr(answers, "to_dict") and hasattr(answers, "columns"):  # a model answering a table
            answers = answers.to_dict(orient="records")
        predicted = answers.tolist() if hasattr(answers, "tolist") else list(answers)
        at = time.time()
        for index, row in zip(picked if picked is not None else range(count), rows, strict=True):
            self._queue.append(
                {
                    "workspace": self.workspace,
                    "endpoint": endpoint,
                    "deployment": deployment,
                    "at": at,
                    "features": {name: _plain(v) for name, v in zip(names, row, strict=False)},
                    "prediction": _plain(predicted[index]) if index < len(predicted) else None,
                }
            )

    def flush(self) -> None:
        """Write the queue and drop each deployment's oldest rows beyond ``keep``."""
        queue, self._queue = self._queue, []
        if not queue:
            return
        with self.db.write() as connection:
            connection.execute(insert(monitor_samples), queue)
            for endpoint, deployment in {(row["endpoint"], row["deployment"]) for row in queue}:
                where = (
                    monitor_samples.c.workspace == self.workspace,
                    monitor_samples.c.endpoint == endpoint,
                    monitor_samples.c.deployment == deployment,
                )
                count = connection.execute(
                    select(func.count()).select_from(monitor_samples).where(*where)
                ).scalar()
                if count and count > self.keep:
                    cutoff = connection.execute(
                        select(monitor_samples.c.id)
                        .where(*where)
                        .order_by(monitor_samples.c.id.desc())
                        .offset(self.keep)
                        .limit(1)
                    ).scalar()
                    connection.execute(delete(monitor_samples).where(*where, monitor_samples.c.id <= cutoff))


def _plain(value: Any) -> Any:
    """A sampled value as JSON holds it: nulls (None, NaN, pandas' NA) as null, numpy scalars as numbers,
    several values (a probability per class) as a list."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):  # as Python values (a 0-d array as its one value)
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "item"):
        return _plain(value.item())
    if type(value).__name__ == "NAType":
        return None
    return str(value)

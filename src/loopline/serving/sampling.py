"""What a serving process keeps for monitoring: a rate-limited sample of scored rows and their answers.

The rate counts rows, not requests, and every row scored in a window of time is as likely to be kept: each
window (a second, or ``1 / rate`` seconds below one row a second) keeps a uniform sample, a reservoir, of
at most ``monitoring.sample_per_second`` x its seconds of the rows scored in it (Li's Algorithm L, which
draws how many rows to pass over until the next one kept). So a client's burst of requests is sampled
across the burst, not from its first request alone: a nightly job sending a file sorted by region gives
monitoring every region, not the first. Sampling costs the hot path one comparison and one addition
unless one of a request's rows is kept; the serving loop closes each window (the hot path reads no
clock); kept rows are queued in memory and written once a second from a worker thread, and each
deployment keeps only its newest ``monitoring.sample_size`` rows. Endpoints created with ``--sensitive``
are never sampled.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select

from loopline.state import Database
from loopline.state.schema import monitor_samples

__all__ = ["Sampler"]


class Sampler:
    """A reservoir of the rows scored in the current window of time, and the queue of kept rows."""

    def __init__(self, db: Database, per_second: float, keep: int, workspace: str = "prod") -> None:
        self.db = db
        self.workspace = workspace
        self.per_second = per_second
        self.keep = keep
        rate = per_second if per_second > 0 and keep > 0 else 0.0  # rows a second actually kept
        self._window = max(1.0, 1.0 / rate) if rate else 1.0
        self._size = max(1, round(rate * self._window)) if rate else 0  # rows a window keeps at most
        self._queue: list[dict[str, Any]] = []
        self._random = random.Random()
        self._open(time.monotonic())

    def _open(self, now: float) -> None:
        """Start a window at ``now``: an empty reservoir, no row scored yet."""
        self._opened = now
        self._reservoir: list[dict[str, Any]] = []
        self._seen = 0  # rows scored in this window
        self._next: float = 0 if self._size else math.inf  # the index of the next row to keep
        self._weight = 1.0  # Algorithm L's W

    def wants(self, rows: int) -> bool:
        """Whether to take (some of) the ``rows`` rows of the request being answered; else they are only
        counted. :meth:`take` follows a True."""
        if self._seen + rows <= self._next:
            self._seen += rows
            return False
        return True

    def rotate(self, *, last: bool = False) -> None:
        """Once the window's time is up (or at the ``last``), queue its reservoir and open the next; the
        serving loop calls this several times a second."""
        now = time.monotonic()
        if last or now - self._opened >= self._window:
            self._queue.extend(self._reservoir)
            self._open(now)

    def _skip(self, filled: int) -> None:
        """Draw the index of the next row to keep, the reservoir holding ``filled`` rows: the next one
        while it fills, then as Algorithm L draws it."""
        if filled < self._size:
            self._next += 1
            return
        self._weight *= math.exp(math.log(1.0 - self._random.random()) / self._size)
        if self._weight >= 1.0:
            self._next += 1
            return
        passed = math.floor(math.log(1.0 - self._random.random()) / math.log(1.0 - self._weight))
        self._next += passed + 1

    def take(self, endpoint: str, deployment: str, columns: list[str], data: Any, answers: Any) -> None:
        """Keep the rows of one request that the reservoir draws, with their predictions."""
        frame = hasattr(data, "to_numpy") and not isinstance(data, np.ndarray)
        matrix: Any = data if frame else np.asarray(data)
        if not frame and matrix.ndim == 1:  # one value a row (texts to a model without a signature)
            matrix = matrix.reshape(-1, 1)
        count = len(matrix)
        picks: list[tuple[int | None, int]] = []  # (the slot it replaces, or None: added; its row)
        filled = len(self._reservoir)
        while self._next < self._seen + count:
            position = int(self._next) - self._seen
            picks.append((None if filled < self._size else self._random.randrange(self._size), position))
            filled = min(self._size, filled + 1)
            self._skip(filled)
        self._seen += count
        if not picks:
            return
        kept = self._rows(endpoint, deployment, columns, data, matrix, frame, answers, [p for _, p in picks])
        for slot, position in picks:
            if slot is None:
                self._reservoir.append(kept[position])
            else:
                self._reservoir[slot] = kept[position]

    def _rows(
        self,
        endpoint: str,
        deployment: str,
        columns: list[str],
        data: Any,
        matrix: Any,
        frame: bool,
        answers: Any,
        positions: list[int],
    ) -> dict[int, dict[str, Any]]:
        """The rows of a request at ``positions``, each with its prediction, as they are queued."""
        picked = sorted(set(positions))
        chosen = matrix.iloc[picked] if frame else matrix[picked]
        rows = chosen.astype(object).to_numpy().tolist() if frame else chosen.tolist()
        names = columns or [str(c) for c in getattr(data, "columns", range(len(rows[0]) if rows else 0))]
        predicted = _predictions(answers, picked)
        at = time.time()
        return {
            index: {
                "workspace": self.workspace,
                "endpoint": endpoint,
                "deployment": deployment,
                "at": at,
                "features": {name: _plain(v) for name, v in zip(names, row, strict=False)},
                "prediction": _plain(predicted.get(index)),
            }
            for index, row in zip(picked, rows, strict=True)
        }

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


def _predictions(answers: Any, picked: list[int]) -> dict[int, Any]:
    """The answers at the positions ``picked`` (those the answer has), by position: a table's, or named
    outputs', as records. Only those rows are converted, not a large request's whole answer."""
    if isinstance(answers, dict):  # named outputs, each a value a row: a row's are its answer
        named = {
            str(name): values
            for name, values in answers.items()
            if hasattr(values, "__len__") and not isinstance(values, str | bytes)
        }
        count = min((len(values) for values in named.values()), default=0)
        return {
            i: {
                name: values.iloc[i] if hasattr(values, "iloc") else values[i]
                for name, values in named.items()
            }
            for i in picked
            if i < count
        }
    count = len(answers) if hasattr(answers, "__len__") else 0
    inside = [index for index in picked if index < count]
    if hasattr(answers, "iloc"):  # pandas: a table's rows as records, a series' values
        chosen = answers.iloc[inside]
        values = chosen.to_dict(orient="records") if hasattr(chosen, "columns") else chosen.tolist()
    elif isinstance(answers, np.ndarray):
        values = answers[inside].tolist()
    else:
        listed = list(answers)
        values = [listed[index] for index in inside]
    return dict(zip(inside, values, strict=True))


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

"""Per-second serving statistics in loopline's database: what canary watches judge and dashboards draw.

Each serving process counts requests, errors and a latency histogram per deployment in memory (added in
bulk several times a second, see ``serving/tally.py``) and writes one row per deployment and second, once
a second, from a worker thread. Queries sum the rows of every replica over a window.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update

from loopline.domain import utcnow
from loopline.state import Database
from loopline.state.schema import serving_paths, serving_stats

__all__ = ["BUCKETS_MS", "StatsRecorder", "WindowStats", "series", "window_stats"]

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
"""Upper bounds of the latency histogram in milliseconds; one more bucket holds everything slower."""

KEEP_SECONDS = 2 * 3600
PATH_HEARTBEAT_SECONDS = 60.0  # how often a process says again what serves its deployments
PATH_KEEP_SECONDS = 3600  # a process silent this long has gone: its reports are removed
_BOUNDS_MS = np.asarray(BUCKETS_MS)


@dataclass
class _Window:
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    latency_sum: float = 0.0
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))


class StatsRecorder:
    """Counts in memory on the event loop; ``take`` there, then ``flush`` from a worker thread writes them."""

    def __init__(self, db: Database, workspace: str) -> None:
        self.db = db
        self.workspace = workspace
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._windows: dict[tuple[str, str], _Window] = {}
        self._last_prune = 0.0
        self._paths: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {}
        self._paths_said = 0.0

    def add(self, endpoint: str, deployment: str, statuses: list[int], seconds: np.ndarray) -> None:
        """Count answered requests: their statuses and latencies (in seconds), in the same order."""
        window = self._windows.get((endpoint, deployment))
        if window is None:
            window = self._windows[(endpoint, deployment)] = _Window()
        codes = np.asarray(statuses)
        window.requests += len(statuses)
        window.errors += int(np.count_nonzero(codes >= 500))
        window.rejected += int(np.count_nonzero((codes >= 400) & (codes < 500)))
        milliseconds = seconds * 1000
        window.latency_sum += float(milliseconds.sum())
        counts = np.bincount(
            np.searchsorted(_BOUNDS_MS, milliseconds, side="left"), minlength=len(window.counts)
        )
        window.counts = [a + b for a, b in zip(window.counts, counts.tolist(), strict=True)]

    def take(self) -> dict[tuple[str, str], _Window]:
        """What was counted since the last call (on the thread that adds)."""
        windows, self._windows = self._windows, {}
        return windows

    def flush(self, windows: dict[tuple[str, str], _Window]) -> None:
        """Write ``windows`` (from ``take``), stamped with this second."""
        second = int(time.time())
        rows = [
            {
                "workspace": self.workspace,
                "endpoint": endpoint,
                "deployment": deployment,
                "replica": self.replica,
                "second": second,
                "requests": w.requests,
                "errors": w.errors,
                "rejected": w.rejected,
                "latency_sum": w.latency_sum,
                "latency_counts": w.counts,
            }
            for (endpoint, deployment), w in windows.items()
            if w.requests
        ]
        prune = time.monotonic() - self._last_prune > 60
        if not rows and not prune:
            return
        with self.db.write() as connection:
            if rows:
                connection.execute(insert(serving_stats), rows)
            if prune:
                self._last_prune = time.monotonic()
                connection.execute(
                    delete(serving_stats).where(serving_stats.c.second < second - KEEP_SECONDS)
                )

    def report_paths(self, current: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]]) -> None:
        """Record what serves each (endpoint, deployment) here, ``current`` mapping it to (content digest,
        path, the model's requirements the packages here do not meet): the changes since the last call at
        once, and every PATH_HEARTBEAT_SECONDS that this process still serves them (from a worker thread)."""
        changed = {key: value for key, value in current.items() if self._paths.get(key) != value}
        gone = [key for key in self._paths if key not in current]
        beat = time.monotonic() - self._paths_said > PATH_HEARTBEAT_SECONDS
        if not changed and not gone and not beat:
            return
        now = utcnow()
        mine = (serving_paths.c.workspace == self.workspace) & (serving_paths.c.replica == self.replica)
        with self.db.write() as connection:
            for endpoint, deployment in [*changed, *gone]:
                where = (
                    mine & (serving_paths.c.endpoint == endpoint) & (serving_paths.c.deployment == deployment)
                )
                connection.execute(delete(serving_paths).where(where))
            if changed:
                rows = [
                    {
                        "workspace": self.workspace,
                        "endpoint": endpoint,
                        "deployment": deployment,
                        "replica": self.replica,
                        "content_digest": digest,
                        "path": path,
                        "environment": list(environment),
                        "seen_at": now,
                    }
                    for (endpoint, deployment), (digest, path, environment) in changed.items()
                ]
                connection.execute(insert(serving_paths), rows)
            if beat:
                connection.execute(update(serving_paths).where(mine).values(seen_at=now))
                cutoff = datetime.fromtimestamp(now.timestamp() - PATH_KEEP_SECONDS, UTC)
                connection.execute(delete(serving_paths).where(serving_paths.c.seen_at < cutoff))
        self._paths = dict(current)
        if beat:
            self._paths_said = time.monotonic()

    def forget_paths(self) -> None:
        """Remove this process's reports (it is stopping)."""
        mine = (serving_paths.c.workspace == self.workspace) & (serving_paths.c.replica == self.replica)
        with self.db.write() as connection:
            connection.execute(delete(serving_paths).where(mine))
        self._paths = {}


@dataclass(frozen=True)
class WindowStats:
    """What one deployment answered during a window, across replicas."""

    requests: int
    errors: int
    rejected: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None

    @property
    def error_rate(self) -> float:
        """The share of answers that were server errors (5xx)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rejected_rate(self) -> float:
        """The share of requests refused (4xx: a column missing, a wrong type, a key not given)."""
        return self.rejected / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "error_rate": round(self.error_rate, 5),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
        }


def quantile(counts: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (None without data)."""
    total = sum(counts)
    if not total:
        return None
    running = 0
    for bound, count in zip((*BUCKETS_MS, float("inf")), counts, strict=True):
        running += count
        if running >= q * total:
            return float(bound)
    return float("inf")


def window_stats(
    db: Database, workspace: str, endpoint: str, deployment: str, since: float, until: float | None = None
) -> WindowStats:
    """Sum every replica's rows for one deployment between two times (seconds since the epoch)."""
    statement = select(
        serving_stats.c.requests,
        serving_stats.c.errors,
        serving_stats.c.rejected,
        serving_stats.c.latency_sum,
        serving_stats.c.latency_counts,
    ).where(
        serving_stats.c.workspace == workspace,
        serving_stats.c.endpoint == endpoint,
        serving_stats.c.deployment == deployment,
        serving_stats.c.second >= int(since),
    )
    if until is not None:
        statement = statement.where(serving_stats.c.second <= int(until))
    counts = [0] * (len(BUCKETS_MS) + 1)
    requests = errors = rejected = 0
    latency = 0.0
    with db.read() as connection:
        for row in connection.execute(statement):
            requests += row.requests
            errors += row.errors
            rejected += row.rejected
            latency += row.latency_sum
            counts = [a + b for a, b in zip(counts, row.latency_counts, strict=True)]
    return WindowStats(
        requests,
        errors,
        rejected,
        quantile(counts, 0.5),
        quantile(counts, 0.99),
        latency / requests if requests else None,
    )


def per_second(db: Database, endpoint: str, since: float) -> list[dict[str, Any]]:
    """Requests, errors and latency per deployment and second since a time (for charts)."""
    statement = (
        select(
            serving_stats.c.deployment,
            serving_stats.c.second,
            func.sum(serving_stats.c.requests),
            func.sum(serving_stats.c.errors),
            func.sum(serving_stats.c.latency_sum),
        )
        .where(serving_stats.c.endpoint == endpoint, serving_stats.c.second >= int(since))
        .group_by(serving_stats.c.deployment, serving_stats.c.second)
        .order_by(serving_stats.c.second)
    )
    with db.read() as connection:
        return [
            {
                "deployment": d,
                "second": s,
                "requests": int(r),
                "errors": int(e),
                "mean_ms": float(total) / int(r) if r else None,
            }
            for d, s, r, e, total in connection.execute(statement)
        ]


def series(db: Database, workspace: str, endpoint: str, since: float, step: int) -> list[dict[str, Any]]:
    """Requests per second, error rate and p50/p99 latency of an endpoint (all deployments and replicas)
    in buckets of ``step`` seconds from ``since`` to now; buckets without requests are left out."""
    statement = select(
        serving_stats.c.second,
        serving_stats.c.requests,
        serving_stats.c.errors,
        serving_stats.c.latency_counts,
    ).where(
        serving_stats.c.workspace == workspace,
        serving_stats.c.endpoint == endpoint,
        serving_stats.c.second >= int(since),
    )
    buckets: dict[int, _Window] = {}
    with db.read() as connection:
        for row in connection.execute(statement):
            start = int(since) + (row.second - int(since)) // step * step
            bucket = buckets.setdefault(start, _Window())
            bucket.requests += row.requests
            bucket.errors += row.errors
            bucket.counts = [a + b for a, b in zip(bucket.counts, row.latency_counts, strict=True)]
    return [
        {
            "at": start,
            "rps": round(bucket.requests / step, 3),
            "error_rate": round(bucket.errors / bucket.requests, 5),
            "p50_ms": quantile(bucket.counts, 0.5),
            "p99_ms": quantile(bucket.counts, 0.99),
        }
        for start, bucket in sorted(buckets.items())
        if bucket.requests
    ]

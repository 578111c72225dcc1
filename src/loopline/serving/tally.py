"""Per-request accounting kept to two list appends, drained in bulk into Prometheus and the statistics.

Answering a request records its status and latency in its deployment's :class:`Tally`. Several times a
second (and before ``/metrics`` answers) the event loop drains every tally: status counts, rows, and the
latency histogram computed with numpy for the whole lot, into the Prometheus children and into the
per-second statistics canary watches read. loopline's own requests (smoke tests, validation, the checks
before traffic moves) are counted in Prometheus only: a canary's watch, a monitoring check and the
dashboard's figures are of the endpoint's clients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from loopline.serving.metrics import LATENCY_BUCKETS, Metrics
from loopline.serving.stats import StatsRecorder

__all__ = ["Tally", "drain"]

_BOUNDS = np.asarray(LATENCY_BUCKETS)


class Tally:
    """What one deployment answered since the last drain: to its clients, or (``clients`` false) to
    loopline's own requests, which the metrics count and the statistics do not."""

    __slots__ = ("children", "clients", "deployment", "endpoint", "latencies", "rows", "statuses")

    def __init__(self, endpoint: str, deployment: str, *, clients: bool = True) -> None:
        self.endpoint = endpoint
        self.deployment = deployment
        self.clients = clients
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self.rows = 0
        self.children: dict[Any, Any] = {}  # Prometheus children, looked up once

    def take(self) -> tuple[list[int], list[float], int]:
        """What was counted, leaving the tally empty."""
        taken = self.statuses, self.latencies, self.rows
        self.statuses, self.latencies, self.rows = [], [], 0
        return taken


def drain(tallies: Iterable[Tally], metrics: Metrics | None, stats: StatsRecorder | None) -> None:
    """Move what every tally holds into the metrics and the statistics."""
    for tally in tallies:
        statuses, latencies, rows = tally.take()
        if not statuses:
            continue
        seconds = np.asarray(latencies)
        if metrics is not None:
            _to_prometheus(tally, metrics, statuses, seconds, rows)
        if stats is not None and tally.clients:
            stats.add(tally.endpoint, tally.deployment, statuses, seconds)


def _to_prometheus(
    tally: Tally, metrics: Metrics, statuses: list[int], seconds: np.ndarray, rows: int
) -> None:
    children = tally.children
    for status, count in Counter(statuses).items():
        child = children.get(status)
        if child is None:
            child = children[status] = metrics.requests.labels(tally.endpoint, tally.deployment, str(status))
        child.inc(count)
    if rows:
        if "rows" not in children:
            children["rows"] = metrics.rows.labels(tally.endpoint, tally.deployment)
        children["rows"].inc(rows)
    histogram = children.get("latency")
    if histogram is None:
        histogram = children["latency"] = metrics.latency.labels(tally.endpoint, tally.deployment)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if buckets is None or total is None or len(buckets) != len(_BOUNDS) + 1:  # not the layout known here
        for value in seconds.tolist():
            histogram.observe(value)
        return
    # A histogram child stores one count per bucket (le is the first bound >= the value) and the sum.
    counts = np.bincount(np.searchsorted(_BOUNDS, seconds, side="left"), minlength=len(buckets))
    for bucket, count in zip(buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)
    total.inc(float(seconds.sum()))

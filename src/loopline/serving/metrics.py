"""Prometheus metrics of a serving process (aggregated across worker processes when there are several)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Metrics", "render"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """The metric families; children are cached per endpoint and deployment by the caller."""

    requests: Any
    latency: Any
    rows: Any
    mirrored: Any
    ready: Any
    calls: Any


def create() -> Metrics:
    """Define the metric families (call once per process, after the multiprocess directory is set)."""
    from prometheus_client import Counter, Gauge, Histogram

    return Metrics(
        requests=Counter(
            "loopline_requests", "Scoring requests answered.", ["endpoint", "deployment", "status"]
        ),
        latency=Histogram(
            "loopline_request_latency_seconds",
            "Time from request to answer.",
            ["endpoint", "deployment"],
            buckets=LATENCY_BUCKETS,
        ),
        rows=Counter("loopline_rows_scored", "Rows scored.", ["endpoint", "deployment"]),
        mirrored=Counter(
            "loopline_mirrored_requests",
            "Requests copied to a mirror deployment.",
            ["endpoint", "deployment", "outcome"],
        ),
        calls=Counter(
            "loopline_model_calls",
            "Calls of a model's predict; rows scored / calls = batch size.",
            ["endpoint", "deployment"],
        ),
        ready=Gauge(
            "loopline_deployment_ready",
            "1 when the deployment is loaded and answering here.",
            ["endpoint", "deployment"],
            multiprocess_mode="max",
        ),
    )


def render() -> tuple[bytes, str]:
    """The exposition text and its content type, across all worker processes when multiprocess."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

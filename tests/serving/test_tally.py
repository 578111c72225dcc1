"""Requests counted in bulk: the same Prometheus figures and statistics as counting them one by one."""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from loopline.serving.metrics import LATENCY_BUCKETS, Metrics
from loopline.serving.stats import BUCKETS_MS, StatsRecorder
from loopline.serving.tally import Tally, drain
from loopline.state import Database


def metrics_in(registry: CollectorRegistry) -> Metrics:
    labels = ["endpoint", "deployment"]
    return Metrics(
        requests=Counter("loopline_requests", "r", [*labels, "status"], registry=registry),
        latency=Histogram(
            "loopline_request_latency_seconds", "l", labels, buckets=LATENCY_BUCKETS, registry=registry
        ),
        rows=Counter("loopline_rows_scored", "s", labels, registry=registry),
        mirrored=Counter("loopline_mirrored_requests", "m", [*labels, "outcome"], registry=registry),
        ready=Gauge("loopline_deployment_ready", "d", labels, registry=registry),
        calls=Counter("loopline_model_calls", "c", labels, registry=registry),
    )


def answers(count: int) -> tuple[list[int], list[float]]:
    """Statuses and latencies spread over every bucket, bounds included exactly."""
    rng = np.random.default_rng(2)
    statuses = rng.choice([200, 200, 200, 400, 404, 500], size=count).tolist()
    latencies = (10 ** rng.uniform(-4.5, 1.5, size=count)).tolist()
    latencies[:3] = [LATENCY_BUCKETS[0], LATENCY_BUCKETS[-1], 0.0]
    return statuses, latencies


def exposed(registry: CollectorRegistry) -> tuple[list[str], float]:
    """The exposition lines (without creation times and the latency sum), and the latency sum."""
    lines = [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]
    (total,) = (
        float(line.split()[-1]) for line in lines if line.startswith("loopline_request_latency_seconds_sum")
    )
    return [line for line in lines if not line.startswith("loopline_request_latency_seconds_sum")], total


def test_a_drained_tally_exposes_what_observing_each_request_would(tmp_path: Path) -> None:
    statuses, latencies = answers(5000)
    bulk, single = CollectorRegistry(), CollectorRegistry()
    tally = Tally("srv", "blue")
    for status, seconds in zip(statuses, latencies, strict=True):
        tally.statuses.append(status)
        tally.latencies.append(seconds)
        tally.rows += 2
    drain([tally], metrics_in(bulk), None)
    one_by_one = metrics_in(single)
    for status, seconds in zip(statuses, latencies, strict=True):
        one_by_one.requests.labels("srv", "blue", str(status)).inc()
        one_by_one.latency.labels("srv", "blue").observe(seconds)
    one_by_one.rows.labels("srv", "blue").inc(2 * len(statuses))
    (got, got_sum), (expected, expected_sum) = exposed(bulk), exposed(single)
    assert got == expected
    assert abs(got_sum - expected_sum) < 1e-9 * expected_sum  # summed in another order
    assert any(line.startswith("loopline_request_latency_seconds_bucket") for line in got)
    assert tally.take() == ([], [], 0)  # drained: nothing is counted twice


def test_statistics_windows_count_errors_rejections_and_latency_buckets(tmp_path: Path) -> None:
    statuses, latencies = answers(2000)
    recorder = StatsRecorder(Database(f"sqlite:///{tmp_path / 'state.db'}"), "dev")
    tally = Tally("srv", "blue")
    tally.statuses, tally.latencies = list(statuses), list(latencies)
    drain([tally], None, recorder)
    window = recorder.take()[("srv", "blue")]
    assert window.requests == 2000
    assert window.errors == sum(1 for s in statuses if s >= 500)
    assert window.rejected == sum(1 for s in statuses if 400 <= s < 500)
    counts = [0] * (len(BUCKETS_MS) + 1)
    for seconds in latencies:
        counts[bisect.bisect_left(BUCKETS_MS, seconds * 1000)] += 1
    assert window.counts == counts
    assert abs(window.latency_sum - sum(latencies) * 1000) < 1e-6 * window.latency_sum
    assert recorder.take() == {}

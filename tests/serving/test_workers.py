"""`loopline serve --workers N`: connections spread across worker processes; a dead worker is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import joblib
import pytest

import loopline
from tests.helpers import input_example, wait_until
from tests.servers import Server, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timing]


def workers_of(server: Server) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid), "-f", "loopline.serving.worker"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return sorted(int(pid) for pid in found)


def answered(server: Server) -> set[str]:
    """The workers (process ids in hex) that logged an answer of endpoint ``pair``."""
    time.sleep(0.3)  # request logs are written every 0.2 s
    return {
        json.loads(line)["request_id"].split("-")[0]
        for line in server.log.read_text().splitlines()
        if line.startswith("{") and '"pair"' in line
    }


def test_two_workers_share_connections_and_a_killed_one_is_replaced(served_project: Path) -> None:
    loopline.create_endpoint("pair", "dev", auth="none", project=served_project)
    loopline.create_deployment("pair", "blue", version=1, check=False, project=served_project)
    columns, _ = input_example(served_project)
    body = {"dataframe_records": [dict.fromkeys(columns, 1.0)]}
    # MKL_NUM_THREADS set by the operator is kept; the others are each worker's share of the cores.
    with Server(served_project, workers=2, env={"MKL_NUM_THREADS": "3"}) as server:

        def score() -> httpx.Response:  # a new connection each time
            return httpx.post(f"{server.url}/endpoints/pair/invocations", json=body, timeout=120)

        pids = workers_of(server)
        assert len(pids) == 2
        share = str(max(1, joblib.cpu_count() // 2))
        for pid in pids:
            env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if v)
            assert env["MKL_NUM_THREADS"] == "3"
            assert env["OPENBLAS_NUM_THREADS"] == os.environ.get("OPENBLAS_NUM_THREADS", share)
            assert env["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", share)
        # The kernel spreads new connections across both workers, not evenly (a busy machine may hand one
        # worker many in a row); a worker writes its request log a few times a second.
        sent, deadline = 0, time.monotonic() + 60
        while answered(server) != {f"{pid:x}" for pid in pids}:
            assert time.monotonic() < deadline, "no answer from each worker in the request log"
            for _ in range(20):
                assert score().status_code == 200
            sent += 20
        # Each worker adds its counts to the shared metrics several times a second; /metrics sums them.
        counted = f'loopline_requests_total{{deployment="blue",endpoint="pair",status="200"}} {sent}.0'
        wait_until(
            lambda: counted in httpx.get(f"{server.url}/metrics").text,
            10,
            f"/metrics never counted the 40 requests: {counted}",
        )
        os.kill(pids[0], signal.SIGKILL)
        # The dead worker's socket stays open in the supervisor: a connection that reached it before the
        # supervisor noticed waits for the replacement instead of being reset; later ones go to the live one.
        for _ in range(40):
            assert score().status_code == 200
        wait_until(
            lambda: len(workers_of(server)) == 2 and pids[0] not in workers_of(server),
            60,
            "the dead worker was not replaced",
            every=0.2,
        )
        (replacement,) = set(workers_of(server)) - set(pids)
        deadline = time.monotonic() + 60
        while f"{replacement:x}" not in answered(server):  # once it answers, connections reach it again
            assert time.monotonic() < deadline, "no connection reached the replacement worker"
            assert score().status_code == 200


def test_one_worker_sizes_its_thread_pools_to_the_cores_it_may_use(
    served_project: Path, tmp_path: Path
) -> None:
    """Held to one core (as a container's CPU limit or `taskset` holds it), a single-process server starts
    OpenMP and BLAS with one thread, not one per core of the machine."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in names}
    errors = tmp_path / "serve.err"
    script = Path(sys.executable).with_name("loopline")
    argv = [str(script), "serve", "-C", str(served_project), "-w", "dev", "--port", str(free_port())]
    with errors.open("wb") as err:
        child = subprocess.Popen(
            argv, stderr=err, stdout=subprocess.DEVNULL, env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
        )  # fmt: skip
    try:
        wait_until(
            lambda: "thread pools:" in errors.read_text(), 60, f"no thread pools logged: {errors.read_text()}"
        )
        assert (
            "thread pools: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1" in errors.read_text()
        )
    finally:
        child.terminate()
        child.wait(timeout=30)

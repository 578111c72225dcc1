"""`loopline serve --workers N`: connections spread across worker processes; a dead worker is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import loopline
from tests.helpers import input_example
from tests.servers import Server

pytestmark = pytest.mark.slow


def workers_of(server: Server) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid), "-f", "loopline.serving.worker"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return sorted(int(pid) for pid in found)


def test_two_workers_share_connections_and_a_killed_one_is_replaced(served_project: Path) -> None:
    loopline.create_endpoint("pair", "dev", auth="none", project=served_project)
    loopline.create_deployment("pair", "blue", version=1, check=False, project=served_project)
    columns, _ = input_example(served_project)
    body = {"dataframe_records": [dict.fromkeys(columns, 1.0)]}
    with Server(served_project, workers=2) as server:
        pids = workers_of(server)
        assert len(pids) == 2
        for _ in range(40):  # a new connection each time: the kernel spreads them across both workers
            assert httpx.post(f"{server.url}/endpoints/pair/invocations", json=body).status_code == 200
        time.sleep(0.5)
        answered_by = {
            json.loads(line)["request_id"].split("-")[0]
            for line in server.log.read_text().splitlines()
            if line.startswith("{") and '"pair"' in line
        }
        assert answered_by == {f"{pid:x}" for pid in pids}
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'loopline_requests_total{deployment="blue",endpoint="pair",status="200"} 40.0' in metrics
        os.kill(pids[0], signal.SIGKILL)
        for _ in range(40):
            assert httpx.post(f"{server.url}/endpoints/pair/invocations", json=body).status_code == 200
        deadline = time.monotonic() + 60
        while len(workers_of(server)) < 2 or pids[0] in workers_of(server):
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)

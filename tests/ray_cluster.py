"""A real Ray cluster on 127.0.0.1: one head node, for the compute tests and the batch scaling benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["local_ray_cluster"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def local_ray_cluster(folder: Path, cpus: int = 2) -> Iterator[str]:
    """``ray start --head --block`` in a process group of its own, on free ports, with ``cpus`` CPUs; the
    address of its Jobs API. Stopped, with every process it started, when the block ends."""
    flags = ["port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port"]
    flags += ["dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port"]
    flags += ["node-manager-port", "object-manager-port"]
    workers = _free_port() % 20000 + 40000  # the workers' range, which no other port may fall in
    taken = set(range(workers, workers + 201))
    ports: dict[str, int] = {}
    for flag in flags:  # free ports come from the same ephemeral range: draw again on a clash
        port = _free_port()
        while port in taken:
            port = _free_port()
        taken.add(port)
        ports[flag] = port
    bin_dir = Path(sys.executable).parent
    # A job's `python` is this interpreter (with loopline), as on a cluster built from loopline's image.
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_USAGE_STATS_ENABLED": "0"}
    log = folder / "head.log"
    head = subprocess.Popen(
        [
            str(bin_dir / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--num-cpus={cpus}",
            "--include-dashboard=true",
            "--disable-usage-stats",
            f"--temp-dir={folder}",
            f"--min-worker-port={workers}",
            f"--max-worker-port={workers + 200}",
            *(f"--{flag}={port}" for flag, port in ports.items()),
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{ports['dashboard-port']}"
    try:
        deadline = time.monotonic() + 120
        while not _ready(address):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield address
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=2)  # it would wait long for the GCS it has just stopped itself
        except ProcessLookupError:  # the head ended by itself (it failed to start)
            head.wait()
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()

"""What the batch driver on a Ray cluster tells loopline through the job's log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loopline.compute.ray_batch import _PART, MARK

# A driver as Ray runs it: unbuffered, stdout and stderr in one log file, and another thread logging
# (Ray Data's executor does) while the driver announces each part it wrote.
DRIVER = """
import logging, sys, threading
from loopline.compute import ray_batch

logging.basicConfig(stream=sys.stderr, format="%(asctime)s INFO %(message)s")
busy = threading.Event()

def chatter():
    while not busy.is_set():
        logging.getLogger("ray.data").warning("Dataset execution finished")

thread = threading.Thread(target=chatter)
thread.start()
for index in range(3000):
    {say}(f"loopline-part {{index}} 100000 24000132")
busy.set()
thread.join()
"""


def _log_of(tmp_path: Path, say: str) -> str:
    log = tmp_path / "job.log"
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-c", DRIVER.format(say=say)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=True,
            timeout=120,
        )
    return log.read_text()


def test_each_part_line_stays_whole_while_other_threads_log(tmp_path: Path) -> None:
    lines = _log_of(tmp_path, "ray_batch._say").splitlines()
    parts = [line for line in lines if MARK in line]
    assert len(parts) == 3000
    assert all(_PART.fullmatch(line) for line in parts), [line for line in parts if not _PART.fullmatch(line)]
    assert sorted(int(_PART.fullmatch(line).group(1)) for line in parts) == list(range(3000))  # type: ignore[union-attr]

"""Child processes: a Ctrl-C during their start is never lost, and they end with their starter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopline import children
from tests.helpers import ctrl_c_at_next_fork


def running(marker: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


@pytest.mark.parametrize("new_session", [False, True])
def test_a_ctrl_c_during_the_start_stops_the_child_and_is_raised(tmp_path: Path, new_session: bool) -> None:
    marker = tmp_path / "sleeper"
    with pytest.raises(KeyboardInterrupt), ctrl_c_at_next_fork():
        children.start(
            [sys.executable, "-c", "import time; time.sleep(60)", str(marker)],
            parent_death_signal=signal.SIGTERM,
            start_new_session=new_session,
        )
    assert not running(marker)


def test_a_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild"
    parent_code = (
        "import signal, sys, time; from loopline import children; "
        f"children.start([sys.executable, '-c', 'import time; time.sleep(60)', {str(marker)!r}], "
        "parent_death_signal=signal.SIGTERM); print('started', flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "started"
    assert running(marker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while running(marker):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.1)


def test_the_cores_a_process_may_use_follow_its_affinity() -> None:
    """`taskset` (or a cpuset) narrows what loopline counts: serving workers share, and tree walks use,
    only those cores."""
    script = (
        "import os; from loopline import children; before = children.cores(); "
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(before, children.cores())"
    )
    before, after = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert 1 <= int(before) <= len(os.sched_getaffinity(0)) and int(after) == 1

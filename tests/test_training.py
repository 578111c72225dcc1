"""Running the training entry point: interrupts are never lost, the child never outlives the run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from loopline.instance import Instance
from loopline.training import run_training
from tests.conftest import ProjectFactory

_armed: list[bool] = []


def _interrupt_in_fork_callback() -> None:
    """A Ctrl-C landing while Python runs its after-fork callbacks, where a raised exception is swallowed."""
    if _armed:
        _armed.clear()
        os.kill(os.getpid(), signal.SIGINT)


os.register_at_fork(after_in_parent=_interrupt_in_fork_callback)


def test_ctrl_c_while_the_child_is_being_started_stops_the_run(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    store = Instance.open(project).store("dev")
    marker = tmp_path / "child-of-this-test"
    command = f'python -c "import time; time.sleep(60)" {marker}'
    started = time.monotonic()
    _armed.append(True)
    with pytest.raises(KeyboardInterrupt):
        run_training(
            root=project,
            command=command,
            store=store,
            experiment="proj",
            run_id="0" * 32,
            log_path=tmp_path / "train.log",
            timeout=120,
        )
    assert not _armed, "the interrupt was not sent"
    assert time.monotonic() - started < 30  # not after the child's minute of sleep
    time.sleep(1.0)
    left = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True, check=False)
    assert not left.stdout.strip(), "the child outlived the interrupted run"

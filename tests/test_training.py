"""Running the training entry point: a Ctrl-C while the child starts stops the run, and the child with it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from loopline.instance import Instance
from loopline.training import run_training
from tests.conftest import ProjectFactory
from tests.helpers import ctrl_c_at_next_fork


def test_ctrl_c_while_the_child_is_being_started_stops_the_run(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    store = Instance.open(project).store("dev")
    marker = tmp_path / "child-of-this-test"
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ctrl_c_at_next_fork():
        run_training(
            root=project,
            command=f'python -c "import time; time.sleep(60)" {marker}',
            store=store,
            experiment="proj",
            run_id="0" * 32,
            log_path=tmp_path / "train.log",
            timeout=120,
        )
    assert time.monotonic() - started < 30  # not after the child's minute of sleep
    left = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True, check=False)
    assert not left.stdout.strip(), "the child outlived the interrupted run"

"""Running the project's training entry point against a workspace."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from loopline import children
from loopline.errors import ConfigError, TrainingFailed
from loopline.mlflow_store import WorkspaceStore

__all__ = ["run_training"]


def _command(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"loopline.yaml: training.command cannot be parsed ({exc})") from None
    if not argv:
        raise ConfigError("loopline.yaml: training.command is empty; set it, e.g. 'python train.py'")
    # "python" means the interpreter loopline runs in, so training sees the same packages.
    if argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def run_training(
    *,
    root: Path,
    command: str,
    store: WorkspaceStore,
    experiment: str,
    run_id: str,
    log_path: Path,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``command`` in ``root`` with MLflow pointed at ``store`` and run ``run_id``; raise on failure."""
    argv = _command(command)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.location.tracking_uri,
        "MLFLOW_REGISTRY_URI": store.location.registry_uri,
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "MLFLOW_RUN_ID": run_id,
        "LOOPLINE_WORKSPACE": store.name,
        "PYTHONUNBUFFERED": "1",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()

    def _expire() -> None:
        timed_out.set()
        children.stop(child, new_session=True)

    # A daemon: a pending timer must never hold loopline's exit for the rest of the timeout.
    timer = threading.Timer(timeout, _expire)
    timer.daemon = True
    with log_path.open("w", encoding="utf-8") as log:
        try:
            child = children.start(
                argv,
                parent_death_signal=signal.SIGKILL,
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise TrainingFailed(
                command=command, outcome=f"could not start ({exc.strerror})", log=log_path
            ) from None
        try:  # from here on, a Ctrl-C wherever it lands stops the child and the timer
            timer.start()
            assert child.stdout is not None
            for line in child.stdout:
                log.write(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            code = child.wait()
        except BaseException:
            children.stop(child, new_session=True)
            raise
        finally:
            timer.cancel()
    if code != 0:
        outcome = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if timed_out.is_set():
            outcome = f"ran longer than training.timeout_seconds ({timeout:g} s)"
        raise TrainingFailed(command=command, outcome=outcome, log=log_path)

"""Keeping MLflow's logging and its progress bars out of loopline's output."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_progress_bars", "quiet_mlflow"]

_bars_lock = threading.Lock()
_bars_quieted = 0  # downloads of loopline's under way with MLflow's progress bars turned off by it
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def quiet_mlflow() -> None:
    """Keep MLflow's and Alembic's informational logging out of loopline's output."""
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Within: no progress bar from MLflow for the artifacts loopline downloads (the SDK prints nothing),
    unless the caller set ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` themselves; after: as before, for the
    caller's own downloads."""
    global _bars_quieted
    with _bars_lock:
        ours = _bars_quieted > 0 or _PROGRESS_BAR not in os.environ
        if ours:
            _bars_quieted += 1
            os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if ours:
            with _bars_lock:
                _bars_quieted -= 1
                if not _bars_quieted:
                    os.environ.pop(_PROGRESS_BAR, None)

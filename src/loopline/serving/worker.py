"""One serving worker process, started by ``loopline serve --workers N``.

python -m loopline.serving.worker PROJECT WORKSPACE HOST PORT
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import sys
from pathlib import Path

from loopline.serving.server import bind, run_worker


def main() -> None:
    """Bind with SO_REUSEPORT beside the other workers and serve."""
    project, workspace, host, port = sys.argv[1:5]
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # end with the supervisor
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    run_worker(Path(project), workspace, bind(host, int(port), reuse_port=True))


if __name__ == "__main__":
    main()

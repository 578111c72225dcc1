"""One serving worker process, started by ``loopline serve --workers N``.

python -m loopline.serving.worker PROJECT WORKSPACE LISTEN_FD READY_FD

LISTEN_FD is the listening socket of this worker's slot, held open by the supervisor; one byte written to
READY_FD tells the supervisor the endpoints answer, and the pipe's end-of-file tells it this process is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from loopline.serving.server import run_worker


def main() -> None:
    """Serve on the inherited socket; say when ready."""
    project, workspace, listen_fd, ready_fd = sys.argv[1:5]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ready = int(ready_fd)
    os.set_inheritable(ready, False)

    def say_ready() -> None:
        os.write(ready, b"r")

    run_worker(Path(project), workspace, socket.socket(fileno=int(listen_fd)), say_ready)


if __name__ == "__main__":
    main()

"""Stops a Ray job when the loopline process that submitted it dies before the job ends.

    python -m loopline.compute.watchdog JOBS_API_URL JOB_ID

It reads its standard input to the end: the submitting process writes ``over`` there when it no longer
needs the job stopped; an end without it means that process is gone.
"""

from __future__ import annotations

import sys
import urllib.request

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Wait for the end of stdin; stop the job unless it said ``over``."""
    address, job_id = (sys.argv[1:] if argv is None else argv)[:2]
    if b"over" in sys.stdin.buffer.read():
        return 0
    request = urllib.request.Request(f"{address.rstrip('/')}/api/jobs/{job_id}/stop", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        return 0


if __name__ == "__main__":
    sys.exit(main())

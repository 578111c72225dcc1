"""Named crash points for fault-injection tests: ``LOOPLINE_FAILPOINT=name`` ends the process there.

The process exits at once, as a power cut or ``kill -9`` would: no cleanup, no ``finally`` blocks.
"""

from __future__ import annotations

import os

__all__ = ["hit"]


def hit(name: str) -> None:
    """Exit immediately with status 137 when ``LOOPLINE_FAILPOINT`` names this point."""
    if os.environ.get("LOOPLINE_FAILPOINT") == name:
        os._exit(137)

"""loopline: models from a commit to production and back, on one laptop or a team's infrastructure.

The SDK functions (``loopline.init``, ``up``, ``status``, ``inner_loop``, ``history``, ``use_workspace``,
``demo``) are imported on first use, so ``import loopline`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("demo", "history", "init", "inner_loop", "status", "up", "use_workspace")

__all__ = ["__version__", "demo", "history", "init", "inner_loop", "status", "up", "use_workspace"]

if TYPE_CHECKING:
    from loopline.api import demo, history, init, inner_loop, status, up, use_workspace


def __getattr__(name: str) -> Any:
    if name in _API:
        from loopline import api

        return getattr(api, name)
    raise AttributeError(f"module 'loopline' has no attribute '{name}'")

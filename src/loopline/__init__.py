"""loopline: models from a commit to production and back, on one laptop or a team's infrastructure.

The SDK functions (``loopline.init``, ``up``, ``status``, ``inner_loop``, ``history``, ``create_endpoint``,
``serve``, ...) live in ``loopline.api`` and are imported on first use, so ``import loopline`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_OWN = ("__version__", "connect", "demo", "serve", "server", "ui")
"""What this module defines itself; every other public name is an operation of ``loopline.api``."""

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ below imports on first use
    from loopline.api import *  # noqa: F403
    from loopline.launch import demo as demo
    from loopline.launch import serve as serve
    from loopline.launch import server as server
    from loopline.launch import ui as ui


_LAUNCHERS = frozenset({"demo", "serve", "server", "ui"})


def _operations() -> list[str]:
    """The SDK functions: the names ``loopline.api`` exports that are not its result types."""
    from importlib import import_module  # not `from loopline import api`, which would ask __getattr__

    return [name for name in import_module("loopline.api").__all__ if name[0].islower()]


def __getattr__(name: str) -> Any:
    if name == "__all__":  # computed on first use, so that `import loopline` loads nothing more
        return [*_OWN, *_operations()]
    if name == "connect":
        from loopline.remote.client import connect

        return connect
    if name in _LAUNCHERS:
        from loopline import launch

        return getattr(launch, name)
    if name in _operations():
        # With LOOPLINE_URL set, an operation the control plane serves runs there (as from the CLI).
        from loopline.remote.client import from_environment

        return from_environment(name)
    raise AttributeError(f"module 'loopline' has no attribute '{name}'")

"""loopline: models from a commit to production and back, on one laptop or a team's infrastructure.

The SDK functions (``loopline.init``, ``up``, ``status``, ``inner_loop``, ``history``, ``create_endpoint``,
``serve``, ...) live in ``loopline.api`` and are imported on first use, so ``import loopline`` stays fast.
"""

from __future__ import annotations

import functools
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


@functools.cache
def _operations() -> frozenset[str]:
    """The SDK functions: the names ``loopline.api`` exports that are not its result types.

    Read from its source, not imported: asking this module for any other name must import nothing.
    Libraries look a name up in every loaded module (pickle's and skops' ``whichmodule``, run while MLflow
    infers a model's requirements in a process where MLflow's plugins loaded this package); importing the
    SDK to answer them made every model logged beside loopline require loopline, SQLAlchemy and the rest.
    """
    import ast
    from pathlib import Path

    source = Path(__file__).with_name("api") / "__init__.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except OSError:  # installed without sources: ask the package itself
        from importlib import import_module  # not `from loopline import api`, which would ask __getattr__

        names = import_module("loopline.api").__all__
    else:
        listed = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        )
        names = ast.literal_eval(listed)
    return frozenset(name for name in names if name[0].islower())


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return [*_OWN, *sorted(_operations())]
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

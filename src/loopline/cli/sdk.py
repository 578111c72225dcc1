"""The SDK as the command line calls it: local, or (with ``LOOPLINE_URL``) on the control plane.

The commands write ``api.inner_loop(...)`` against this module's ``api``: to type checkers it is
:mod:`loopline.api` itself; at run time each function is looked up at the call, local or remote, so the
choice is made here, at the command line's boundary, and nowhere in the SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["api"]


class _Boundary:
    """Each SDK function, from the environment: remote when ``LOOPLINE_URL`` is set."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        from loopline.remote.client import from_environment

        return from_environment(name)


if TYPE_CHECKING:
    from loopline import api
else:
    api = _Boundary()

"""The SDK's side of the control plane: send one call to ``LOOPLINE_URL`` and rebuild its answer."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson

from loopline.control.codec import signature
from loopline.errors import LooplineError, StoreUnavailable, Unauthenticated, from_answer

__all__ = ["call_remote", "post"]

# Outer loops watch canaries and validate for minutes: wait as long as the server works, but give up
# quickly on a server that does not answer the connection at all.
_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=10.0)


def _token() -> str:
    token = os.environ.get("LOOPLINE_TOKEN", "").strip()
    if not token:
        raise Unauthenticated(problem="LOOPLINE_URL is set but LOOPLINE_TOKEN is not")
    return token


def post(
    url: str, route: str, content: bytes | Iterator[bytes], content_type: str = "application/json"
) -> Any:
    """POST to the control plane; the answer's JSON, or the error it carries raised as a loopline error."""
    target = f"{url.rstrip('/')}/v1/{route}"
    headers = {"Authorization": f"Bearer {_token()}", "Content-Type": content_type}
    try:
        response = httpx.post(target, content=content, headers=headers, timeout=_TIMEOUT)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreUnavailable(what="loopline's control plane", where=url, reason=reason) from None
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        data = None
    if response.status_code >= 400:
        if not isinstance(data, dict):
            raise StoreUnavailable(
                what="loopline's control plane", where=url, reason=f"it answered HTTP {response.status_code}"
            )
        raise from_answer(data, response.status_code)
    return data


_HEAD_BY_DEFAULT = frozenset({"outer_loop_test", "outer_loop_prod", "validation_report"})
"""Functions whose commit defaults to HEAD: the caller's HEAD, not the control plane's checkout's."""


def _caller_head(project: Any) -> str | None:
    from pathlib import Path

    from loopline.git import is_git_repo, resolve_commit

    folder = Path(project) if project is not None else Path.cwd()
    return resolve_commit(folder, "HEAD") if is_git_repo(folder) else None


def call_remote(url: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run an SDK function on the control plane at ``url``; the same result type as a local call."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    if function.__name__ == "inner_loop":
        from loopline.control.upload import remote_inner_loop

        return remote_inner_loop(url, bound.arguments)
    arguments = dict(bound.arguments)
    if function.__name__ in _HEAD_BY_DEFAULT and arguments.get("commit") is None:
        arguments["commit"] = _caller_head(arguments.get("project"))
    shape = signature(function)
    try:
        body = orjson.dumps(shape.encode_arguments(arguments))
    except (TypeError, ValueError) as exc:
        raise LooplineError(f"the arguments of {function.__name__} cannot be sent: {exc}") from None
    return shape.decode_result(post(url, function.__name__, body))

"""The SDK over HTTP: ``loopline.connect(url, token)`` gives the SDK's operations, run on a control plane.

``client.call(loopline.api.status)`` (or ``client.status()``) sends the operation under its wire name from
the operation table and rebuilds the same result type a local call returns; errors arrive as the same
exception classes. Progress of a long operation (a canary release, a validation) streams back to the
caller's reporter as it happens. Operations the table keeps local run in the caller's process.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import orjson

from loopline.errors import LooplineError, StoreUnavailable, Unauthenticated, UsageError, from_answer
from loopline.net import http_client
from loopline.operations import Operation, operation, operations
from loopline.remote.codec import signature

if TYPE_CHECKING:  # httpx is imported on the first call: a local command never needs it
    import httpx

__all__ = ["STREAM", "Client", "connect", "from_environment"]

P = ParamSpec("P")
R = TypeVar("R")

STREAM = "application/x-ndjson"
"""The media type of a streamed answer: progress lines, then the result (or the error)."""


# Outer loops watch canaries and validate for minutes: wait as long as the server works, but give up
# quickly on a server that does not answer the connection at all.
def _timeout() -> httpx.Timeout:
    import httpx

    return httpx.Timeout(connect=10.0, read=None, write=60.0, pool=10.0)


_pool: httpx.Client | None = None
_pool_lock = threading.Lock()


def _connections() -> httpx.Client:
    """One pool of connections for this process's calls to control planes: a training's input files (a
    call each), a sweep's trials and every SDK call reuse an open connection instead of opening (and, with
    TLS, negotiating) one each."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.is_closed:
            _pool = http_client(timeout=_timeout())
        return _pool


def _caller_head(project: Any) -> str | None:
    from loopline.git import is_git_repo, resolve_commit

    folder = _caller_folder(project)
    return resolve_commit(folder, "HEAD") if is_git_repo(folder) else None


def _caller_folder(project: Any) -> Path:
    return Path(project) if project is not None else Path.cwd()


class Client:
    """A control plane at ``url``, called with ``token``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def _headers(self, content_type: str, accept: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": accept}

    def _unreachable(self, exc: httpx.HTTPError) -> StoreUnavailable:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreUnavailable(what="loopline's control plane", where=self.url, reason=reason)

    def post(
        self, route: str, content: bytes | Iterator[bytes], content_type: str = "application/json"
    ) -> Any:
        """POST to ``/v1/<route>``; the answer's JSON, or the error it carries raised as a loopline error."""
        import httpx

        try:
            response = _connections().post(
                f"{self.url}/v1/{route}", content=content, headers=self._headers(content_type)
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._answer(response)

    @contextlib.contextmanager
    def _stream(self, route: str, body: bytes, accept: str) -> Iterator[httpx.Response]:
        """POST to ``/v1/<route>``, the answer open as it arrives; the network's errors as the control
        plane being unreachable."""
        import httpx

        try:
            with _connections().stream(
                "POST",
                f"{self.url}/v1/{route}",
                content=body,
                headers=self._headers("application/json", accept),
            ) as response:
                yield response
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    @contextlib.contextmanager
    def download(self, route: str, body: bytes) -> Iterator[Iterator[bytes]]:
        """POST to ``/v1/<route>`` and give the bytes of its answer as they arrive (an error it carries
        raised as a loopline error, before any byte)."""
        with self._stream(route, body, "application/octet-stream") as response:
            if response.status_code >= 400:
                response.read()
                self._answer(response)
            yield response.iter_bytes(1 << 20)

    def _streamed(self, route: str, body: bytes, reporter: Any) -> Any:
        """POST and pass each progress line to ``reporter`` as it arrives; the result at the end."""
        with self._stream(route, body, STREAM) as response:
            if response.status_code >= 400 or not response.headers.get("content-type", "").startswith(STREAM):
                response.read()
                return self._answer(response)
            for line in response.iter_lines():
                found, result = _event(line, reporter)
                if found:
                    return result
        raise StoreUnavailable(
            what="loopline's control plane", where=self.url, reason="the answer ended before its result"
        )

    def _answer(self, response: httpx.Response) -> Any:
        """A whole answer's JSON, or the error it carries raised as a loopline error."""
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        if response.status_code >= 400:
            if not isinstance(data, dict):
                raise StoreUnavailable(
                    what="loopline's control plane",
                    where=self.url,
                    reason=f"it answered HTTP {response.status_code}",
                )
            raise from_answer(data, response.status_code)
        return data

    def call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run an SDK function on the control plane; the same result type as a local call."""
        op = operation(function)
        if op.composed:
            from loopline.remote.composed import remote_report_experiment, remote_sweep, remote_use_workspace

            composed = {
                "report_experiment": remote_report_experiment,
                "sweep": remote_sweep,
                "use_workspace": remote_use_workspace,
            }[op.name]
            return cast(R, composed(self, dict(inspect.signature(function).bind(*args, **kwargs).arguments)))
        if not op.remote:
            return function(*args, **kwargs)
        arguments = dict(inspect.signature(function).bind(*args, **kwargs).arguments)
        return cast(R, self._send(op, arguments))

    def _send(self, op: Operation, arguments: dict[str, Any]) -> Any:
        if op.name == "inner_loop":
            from loopline.remote.upload import remote_inner_loop

            return remote_inner_loop(self, arguments)
        if op.name == "upload_data":
            from loopline.remote.data import remote_upload_data

            return remote_upload_data(self, arguments)
        if op.caller_head and arguments.get("commit") is None:
            arguments["commit"] = _caller_head(arguments.get("project"))
        elif isinstance(arguments.get("commit"), str):  # a git ref names a commit of the caller's history,
            from loopline.git import commit_prefix  # which the control plane's checkout need not share

            arguments["commit"] = commit_prefix(_caller_folder(arguments.get("project")), arguments["commit"])
        shape = signature(op)
        try:
            body = orjson.dumps(shape.encode_arguments(arguments))
        except (TypeError, ValueError) as exc:
            raise LooplineError(f"the arguments of {op.name} cannot be sent: {exc}") from None
        reporter = arguments.get("reporter")
        data = self._streamed(op.name, body, reporter) if reporter is not None else self.post(op.name, body)
        return shape.decode_result(data)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        found = operations().get(name)
        if found is None or name.startswith("_"):
            raise AttributeError(f"the SDK has no operation '{name}'")
        function = found.function

        def bound(*args: Any, **kwargs: Any) -> Any:
            return self.call(function, *args, **kwargs)

        bound.__doc__ = function.__doc__
        bound.__name__ = name
        return bound


def _event(line: str, reporter: Any) -> tuple[bool, Any]:
    """Pass one progress line to ``reporter``; (True, result) for the result line, raise for an error."""
    if not line.strip():
        return False, None
    event = orjson.loads(line)
    if "step" in event:
        reporter.step(str(event["step"]))
    elif "output" in event:
        reporter.output(str(event["output"]))
    elif "error" in event:
        raise from_answer(event["error"], int(event.get("status", 500)))
    elif "result" in event:
        return True, event["result"]
    return False, None


def connect(url: str | None = None, token: str | None = None) -> Client:
    """The SDK on the control plane at ``url`` (or ``LOOPLINE_URL``), with ``token`` (``LOOPLINE_TOKEN``)."""
    url = url or os.environ.get("LOOPLINE_URL", "").strip()
    token = (token or os.environ.get("LOOPLINE_TOKEN", "")).strip()
    if not url:
        raise UsageError("connect needs the control plane's URL (or LOOPLINE_URL)")
    if not token:
        raise Unauthenticated(problem="LOOPLINE_URL is set but LOOPLINE_TOKEN is not")
    return Client(url, token)


def from_environment(name: str) -> Callable[..., Any]:
    """The SDK function ``name`` as a front end's boundary offers it: on the control plane at
    ``LOOPLINE_URL`` when that is set and the table serves it there, else the local function."""
    from loopline import api

    function: Callable[..., Any] = getattr(api, name)
    served = operations().get(name)
    if (
        os.environ.get("LOOPLINE_URL", "").strip()
        and served is not None
        and (served.remote or served.composed)
    ):
        return cast(Callable[..., Any], getattr(connect(), name))
    return function

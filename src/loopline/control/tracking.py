"""MLflow tracking for dev through the control plane: ``/mlflow/dev/`` is an MLflow tracking URI.

A member whose machine holds no credentials for dev's store logs a notebook's runs with stock MLflow:
``MLFLOW_TRACKING_URI=<control plane>/mlflow/dev`` and ``MLFLOW_TRACKING_TOKEN=<their loopline token>``
(``loopline.use_workspace()`` sets both when ``LOOPLINE_URL`` is set). Behind it runs MLflow's own
tracking server for dev (``tracking_backend``, started on the first call, on 127.0.0.1), so every MLflow
client and call works as MLflow defines it; in front of it the control plane decides:

- who: the token's user; reading needs ``reader`` on dev, logging ``developer`` on dev.
- what: MLflow's runs, experiments, logged models, their metrics and files. The registry is read-only
  (a version enters dev through ``loopline inner-loop``, with its commit and gate), and what else MLflow's
  server offers (traces, GenAI datasets, gateway secrets, webhooks, workspaces) is refused.
- whose: a run, experiment or logged model made here is its maker's (the tag ``loopline.tracked_by``,
  which no caller sets); only its maker changes it or writes its files. The inner loop's runs, and
  everything logged another way, are read-only here. ``mlflow.user`` is the token's user, whatever the
  client sends.
- where: files go to dev's artifact store through this proxy (their URIs are answered as
  ``mlflow-artifacts:``), never to a path the caller names; a new experiment's files go under dev's
  artifact root whatever location the caller asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from loopline import access
from loopline.errors import (
    LooplineError,
    NotFound,
    RateLimited,
    Refused,
    StoreUnavailable,
    TooLarge,
    Unauthenticated,
    UsageError,
)
from loopline.instance import Instance
from loopline.mlflow_store import artifact_root_uri

__all__ = ["TRACKED_BY", "Tracking", "classify", "mlflow_error", "read_body"]

TRACKED_BY = "loopline.tracked_by"
"""The tag naming who made a run, experiment or logged model through the control plane."""

WORKSPACE = "dev"
MAX_JSON = 16 << 20
"""Largest MLflow API body (a log-batch of 1,000 metrics is well under 1 MiB)."""

READ, REGISTRY = "read", "registry"
CREATE_RUN, CREATE_EXPERIMENT, CREATE_MODEL = "create-run", "create-experiment", "create-model"
RUN, EXPERIMENT, MODEL, FILES = "run", "experiment", "model", "files"

_RUN_WRITES = (
    "update",
    "delete",
    "restore",
    "log-metric",
    "log-parameter",
    "set-tag",
    "delete-tag",
    "log-batch",
    "log-model",
    "log-inputs",
    "outputs",
)
_EXPERIMENT_WRITES = ("update", "delete", "restore", "set-experiment-tag", "delete-experiment-tag")
_ROUTES: dict[tuple[str, str], str] = {
    **{("GET", f"experiments/{r}"): READ for r in ("get-by-name", "get", "search")},
    ("POST", "experiments/search"): READ,
    ("POST", "experiments/create"): CREATE_EXPERIMENT,
    **{("POST", f"experiments/{r}"): EXPERIMENT for r in _EXPERIMENT_WRITES},
    ("GET", "runs/get"): READ,
    ("POST", "runs/search"): READ,
    ("POST", "runs/create"): CREATE_RUN,
    **{("POST", f"runs/{r}"): RUN for r in _RUN_WRITES},
    **{
        ("GET", r): READ
        for r in ("artifacts/list", "metrics/get-history", "metrics/get-history-bulk-interval")
    },
    ("POST", "logged-models"): CREATE_MODEL,
    ("POST", "logged-models/search"): READ,
    **{("GET", f"registered-models/{r}"): READ for r in ("get", "search", "get-latest-versions", "alias")},
    ("POST", "registered-models/get-latest-versions"): READ,
    **{("GET", f"model-versions/{r}"): READ for r in ("get", "search", "get-download-uri")},
    ("GET", "server-info"): READ,
}
_MODEL_ID = r"m-[0-9a-f]{32}"
_MODEL_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(rf"logged-models/({_MODEL_ID})(/artifacts/directories)?"), READ),
    ("PATCH", re.compile(rf"logged-models/({_MODEL_ID})(/tags)?"), MODEL),
    ("DELETE", re.compile(rf"logged-models/({_MODEL_ID})(/tags/[^/]+)?"), MODEL),
    ("POST", re.compile(rf"logged-models/({_MODEL_ID})/params"), MODEL),
]
_API = re.compile(r"api/[23]\.0/mlflow/(.+)")
_FILES = re.compile(r"api/2\.0/mlflow-artifacts/artifacts(?:/(.*))?")
_RUN_FILES = re.compile(r"(?:^|/)([0-9a-f]{32})/artifacts(?:/|$)")
_MODEL_FILES = re.compile(rf"(?:^|/)models/({_MODEL_ID})/artifacts(?:/|$)")
_RESERVED = ("loopline.", "loopline_")


def classify(method: str, path: str) -> tuple[str, str | None]:
    """What a call to ``path`` (below the tracking URI) touches, and the logged model or file path it
    names; UsageError for what the control plane does not serve."""
    if files := _FILES.fullmatch(path):
        where = files.group(1) or ""
        if method == "GET":
            return READ, where
        if method in ("PUT", "DELETE") and where:
            return FILES, where
    elif api := _API.fullmatch(path):
        route = api.group(1).rstrip("/")
        if kind := _ROUTES.get((method, route)):
            return kind, None
        for verb, pattern, touched in _MODEL_ROUTES:
            if method == verb and (named := pattern.fullmatch(route)):
                return touched, named.group(1)
        if route.startswith(("registered-models/", "model-versions/")):
            return REGISTRY, None
    raise UsageError(
        f"{method} /{path[:120]} is not served here: the control plane serves MLflow's runs, experiments, "
        "logged models and their files for dev, and reads of its registry"
    )


async def read_body(request: Request, limit: int, too_large: LooplineError) -> bytes:
    """The request's body, refused (``too_large``) as soon as it is known to be, or streams past,
    ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _refuse_reserved(tags: Any) -> None:
    for tag in tags if isinstance(tags, list) else []:
        key = str(tag.get("key", "")) if isinstance(tag, dict) else ""
        if key.startswith(_RESERVED) or key == "mlflow.user":
            raise UsageError(
                f"the tag {key[:100]!r} is set by loopline, not by a caller: log it under another name"
            )


def _stamped(tags: Any, user: str) -> list[dict[str, Any]]:
    """The caller's tags, checked, with who made it (their client's own ``mlflow.user`` replaced)."""
    if not isinstance(tags, list):
        raise UsageError("tags is not a list of {key, value} objects")
    given = [t for t in tags if not (isinstance(t, dict) and t.get("key") == "mlflow.user")]
    _refuse_reserved(given)
    return [*given, {"key": "mlflow.user", "value": user}, {"key": TRACKED_BY, "value": user}]


def _not_yours(what: str, ident: str, maker: str | None) -> Refused:
    whose = (
        f"{maker}'s" if maker else "not made through the control plane (the inner loop's, or logged directly)"
    )
    return Refused(
        f"{what} {ident[:64]} is {whose}: it is read-only here; log to a {what} of your own "
        "(`mlflow.start_run()` makes one)"
    )


class _Backend:
    """MLflow's tracking server for dev on 127.0.0.1, started when first needed and again if it ended."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._child: Any = None
        self._url = ""
        self._lock = asyncio.Lock()
        self._client: Any = None

    def client(self) -> Any:
        """One HTTP client for every call to the server (its connections kept open)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_keepalive_connections=16))
        return self._client

    def _start(self, location: Any, artifacts: str) -> None:
        from loopline import children
        from loopline.net import free_port

        port = free_port()
        state = Instance.open(self.root).settings.state_dir  # on a team's stores, maybe not made yet
        state.mkdir(parents=True, exist_ok=True)
        log_file = state / "tracking-server.log"
        env = {
            **os.environ,
            "MLFLOW_BACKEND_STORE_URI": location.tracking_uri,
            "MLFLOW_REGISTRY_STORE_URI": location.registry_uri,
            "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
        }
        with log_file.open("ab") as out:
            self._child = children.start(
                [sys.executable, "-m", "loopline.control.tracking_backend", str(port)],
                parent_death_signal=signal.SIGTERM,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self._url = f"http://127.0.0.1:{port}"
        self._log = log_file

    async def url(self, location: Any, artifacts: str) -> str:
        """The running server's URL (started, and waited for, when it is not running)."""
        import httpx

        async with self._lock:
            if self._child is not None and self._child.poll() is None:
                return self._url
            self._start(location, artifacts)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self._child.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await self.client().get(f"{self._url}/health", timeout=2)).status_code == 200:
                        return self._url
                await asyncio.sleep(0.1)
            await self.stop()
            tail = self._log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise StoreUnavailable(
                what="dev's MLflow tracking server",
                where=self._url,
                reason=f"it did not start: {tail[0][:300]}",
            )

    async def stop(self) -> None:
        """End the server, if it runs."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(10)
            except Exception:
                self._child.kill()
        self._child = None


_MLFLOW_CODES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "PERMISSION_DENIED",
    413: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_error(error: LooplineError) -> Response:
    """A loopline error as MLflow's clients read one (their error codes; a refusal is 403)."""
    status = 403 if error.http_status == 409 else error.http_status  # what loopline refuses, MLflow denies
    message = error.message
    if isinstance(error, Unauthenticated):
        message = message.replace("set LOOPLINE_TOKEN", "set MLFLOW_TRACKING_TOKEN")
    body = {"error_code": _MLFLOW_CODES.get(status, "INVALID_PARAMETER_VALUE"), "message": message}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.fields.get("seconds", 60))
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


class Tracking:
    """The ``/mlflow/{workspace}/{path}`` route of the control plane."""

    def __init__(
        self, root: Path, principal: Callable[[Request], access.Principal], max_upload_mb: int
    ) -> None:
        self.root = root
        self.principal = principal
        self.max_upload = max_upload_mb << 20
        self.backend = _Backend(root)
        self.makers = _Makers(root)

    def _location(self) -> tuple[Any, str]:
        location = Instance.open(self.root).settings.store(WORKSPACE)
        if location.artifact_location is None:
            raise UsageError(
                f"dev's store is the MLflow tracking server at {location.tracking_uri}: log to it directly"
            )
        return location, artifact_root_uri(location.artifact_location)

    def _admit(self, request: Request, kind: str) -> tuple[access.Principal, Any, str]:
        """The caller, signed in and allowed ``kind`` of call (a refusal audited), and dev's store."""
        from loopline.operations import Operation, authorize
        from loopline.rules import DEVELOP, READ_ANY

        principal = self.principal(request)
        request.state.user = principal.user
        op = Operation("mlflow_tracking", authorize, READ_ANY if kind == READ else DEVELOP)
        authorize(Instance.open(self.root), op, {}, principal)
        if kind == REGISTRY:
            raise Refused(
                "dev's registry is read-only here: a model version enters it with its commit and gate "
                "through `loopline inner-loop`"
            )
        return principal, *self._location()

    async def __call__(self, request: Request) -> Response:
        """Sign in, check, pass to MLflow's server, answer with files' URIs as this proxy serves them."""
        request.state.user = "-"
        try:
            if request.path_params["workspace"] != WORKSPACE:
                raise NotFound(
                    "only dev's tracking is served here: test and prod take models through the workflows"
                )
            kind, named = classify(request.method, request.path_params["path"])
            principal, location, artifacts = await run_in_threadpool(self._admit, request, kind)
            if request.path_params["path"].startswith("api/2.0/mlflow-artifacts/"):
                return await self._files(request, principal, kind, named or "", location, artifacts)
            return await self._api(request, principal, kind, named, location, artifacts)
        except LooplineError as error:
            return mlflow_error(error)

    async def _api(
        self,
        request: Request,
        principal: access.Principal,
        kind: str,
        model_id: str | None,
        location: Any,
        artifacts: str,
    ) -> Response:
        body = await read_body(
            request,
            MAX_JSON,
            TooLarge(f"the request body is over {MAX_JSON >> 20} MB; log in smaller batches"),
        )
        if kind != READ:
            try:
                data = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError:
                raise UsageError("the request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise UsageError("the request body is not a JSON object")
            checked = await run_in_threadpool(
                self._checked, principal, kind, request.path_params["path"], data, model_id, artifacts
            )
            body = orjson.dumps(checked)
        url = await self.backend.url(location, artifacts)
        answer = await self.backend.client().request(
            request.method,
            f"{url}/{request.path_params['path']}",
            params=request.query_params,
            content=body or None,
            headers={"content-type": "application/json"} if body else {},
        )
        return Response(
            _as_served(answer.content, artifacts),
            answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    def _checked(
        self,
        principal: access.Principal,
        kind: str,
        route: str,
        data: dict[str, Any],
        model_id: str | None,
        artifacts: str,
    ) -> dict[str, Any]:
        """The body of a change, refused unless the caller may make it, with what loopline sets."""
        user = principal.user
        if kind == CREATE_RUN:
            return {**data, "user_id": user, "tags": _stamped(data.get("tags") or [], user)}
        if kind == CREATE_EXPERIMENT:
            # A new experiment's files go under dev's artifact root, whatever location was asked for.
            where = f"{artifacts}/experiments/{uuid.uuid4().hex}"
            return {**data, "artifact_location": where, "tags": _stamped(data.get("tags") or [], user)}
        if kind == CREATE_MODEL:
            if source := data.get("source_run_id"):
                self.makers.owned(RUN, str(source), user)
            return {**data, "tags": _stamped(data.get("tags") or [], user)}
        _refuse_reserved(data.get("tags"))
        if route.endswith("-tag"):  # set-tag, delete-tag and their experiment twins name one key
            _refuse_reserved([{"key": data.get("key")}])
        if kind == RUN:
            self.makers.owned(RUN, str(data.get("run_id") or data.get("run_uuid") or ""), user)
        elif kind == EXPERIMENT:
            self.makers.owned(EXPERIMENT, str(data.get("experiment_id") or ""), user)
        elif kind == MODEL:
            self.makers.owned(MODEL, model_id or "", user)
        return data

    async def _files(
        self,
        request: Request,
        principal: access.Principal,
        kind: str,
        path: str,
        location: Any,
        artifacts: str,
    ) -> Response:
        if kind == FILES:
            await run_in_threadpool(self._writable, principal, path, artifacts)
        url = await self.backend.url(location, artifacts)
        target = f"{url}/{request.path_params['path']}"
        spool: Any = None
        headers = {"content-type": request.headers.get("content-type", "application/octet-stream")}
        if request.method == "PUT":
            # The whole file first, so that MLflow's server never stores part of one.
            spool, size = await _spooled(request, self.max_upload)
            headers["content-length"] = str(size)
        client = self.backend.client()
        outgoing = client.build_request(
            request.method,
            target,
            params=request.query_params,
            content=_Spooled(spool) if spool is not None else None,
            headers=headers,
        )
        try:
            answer = await client.send(outgoing, stream=True)
        finally:
            if spool is not None:
                spool.close()
        if request.method != "GET" or "json" in answer.headers.get("content-type", ""):
            content = await answer.aread()
            await answer.aclose()
            return Response(
                _as_served(content, artifacts),
                answer.status_code,
                media_type=answer.headers.get("content-type"),
            )

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_bytes():  # decoded: no content-encoding is passed on
                    yield chunk
            finally:
                await answer.aclose()

        return StreamingResponse(body(), answer.status_code, media_type=answer.headers.get("content-type"))

    def _writable(self, principal: access.Principal, path: str, artifacts: str) -> None:
        """Refuse a file path that is not under a run or logged model the caller made."""
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in path:
            raise UsageError(f"the file path {path[:120]!r} is not a plain relative path")
        if model := _MODEL_FILES.search(path):
            home = self.makers.owned(MODEL, model.group(1), principal.user)
        elif run := _RUN_FILES.search(path):
            home = self.makers.owned(RUN, run.group(1), principal.user)
        else:
            raise Refused(f"{path[:120]} is not a file of a run or logged model; log files to your run")
        prefix = _relative(home, artifacts)
        if prefix is None or not (path == prefix or path.startswith(f"{prefix}/")):
            raise Refused(f"{path[:120]} is not where that run's or model's files are; log them to it")


class _Makers:
    """Who made each run, experiment and logged model, and where its files are: read from dev's store once
    (the mark is set as it is made, and no caller sets or removes it), at most ``size`` kept."""

    def __init__(self, root: Path, size: int = 10_000) -> None:
        self.root = root
        self.size = size
        self._known: OrderedDict[tuple[str, str], tuple[str | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def owned(self, what: str, ident: str, user: str) -> str:
        """The artifact URI of the caller's own ``what`` ``ident``; refused when it is not theirs."""
        if not ident:
            raise UsageError(f"the request names no {what}")
        with self._lock:
            found = self._known.get((what, ident))
        if found is None:
            found = self._read(what, ident)
            with self._lock:
                self._known[(what, ident)] = found
                while len(self._known) > self.size:
                    self._known.popitem(last=False)
        maker, home = found
        if maker != user:
            raise _not_yours(what.replace("model", "logged model"), ident, maker)
        return home

    def _read(self, what: str, ident: str) -> tuple[str | None, str]:
        from mlflow.exceptions import MlflowException

        client = Instance.open(self.root).store(WORKSPACE).client
        try:
            if what == RUN:
                run = client.get_run(ident)
                tags, home = run.data.tags, run.info.artifact_uri
            elif what == EXPERIMENT:
                experiment = client.get_experiment(ident)
                tags, home = experiment.tags, experiment.artifact_location
            else:
                model = client.get_logged_model(ident)
                tags, home = model.tags, model.artifact_location
        except MlflowException:
            raise NotFound(f"{what} {ident[:64]} does not exist in dev") from None
        return tags.get(TRACKED_BY), str(home)


def _relative(uri: str, artifacts: str) -> str | None:
    return uri[len(artifacts) + 1 :] if uri.startswith(f"{artifacts}/") else None


def _as_served(content: bytes, artifacts: str) -> bytes:
    """An MLflow answer with URIs of dev's artifact store as the proxy serves them (``mlflow-artifacts:``)."""
    root = json.dumps(f"{artifacts}/")[:-1].encode()  # the opening quote, the root, no closing quote
    return content.replace(root, b'"mlflow-artifacts:/')


async def _spooled(request: Request, limit: int) -> tuple[Any, int]:
    """The request's body in a temporary file, refused as soon as it streams past ``limit`` bytes."""
    too_large = TooLarge(f"the file is over {limit >> 20} MB (control_plane.max_upload_mb)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    spool, size = tempfile.TemporaryFile(), 0  # noqa: SIM115 (closed by the caller, or here on failure)
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            await run_in_threadpool(spool.write, chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size


class _Spooled:
    """A spooled body httpx may send again (on a kept-alive connection the server had closed)."""

    def __init__(self, spool: Any) -> None:
        self.spool = spool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await run_in_threadpool(self.spool.seek, 0)
        while chunk := await run_in_threadpool(self.spool.read, 1 << 20):
            yield chunk

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

The same server answers MLflow's web UI at ``/ui/mlflow/`` (``browse``), with the dashboard's session
instead of a token and the same decisions, a change taken only from the UI's own pages. Which routes are
served, and what each touches, is ``mlflow_routes``. ``/mlflow/prod/`` (and ``/mlflow/test/``) reads that
workspace's registry, and nothing else of it (``released``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from loopline import access
from loopline.control.mlflow_routes import (
    CREATE_EXPERIMENT,
    CREATE_MODEL,
    CREATE_RUN,
    EXPERIMENT,
    FILES,
    LISTING,
    MODEL,
    MODEL_FILES,
    READ,
    REGISTRY,
    RUN,
    RUN_FILES,
    STATIC,
    UI_FILES,
    classify,
    classify_browser,
)
from loopline.control.registry_files import RegistryFiles, VersionFiles, served_location
from loopline.control.released import Released
from loopline.control.tracking_backend import Backend
from loopline.errors import (
    LooplineError,
    NotFound,
    RateLimited,
    Refused,
    TooLarge,
    Unauthenticated,
    UsageError,
)
from loopline.instance import Instance
from loopline.net import bounded_stream, foreign_host, read_body
from loopline.operations import refuse_nul

__all__ = ["TRACKED_BY", "Tracking", "mlflow_error", "ui_routes"]

TRACKED_BY = "loopline.tracked_by"
"""The tag naming who made a run, experiment or logged model through the control plane."""

WORKSPACE = "dev"
MAX_JSON = 16 << 20
"""Largest MLflow API body (a log-batch of 1,000 metrics is well under 1 MiB)."""

_RESERVED = ("loopline.", "loopline_")
_UI_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}
# MLflow's page: its own scripts and workers only, no request to another site, never in another site's frame.
_PAGE_HEADERS = {
    **_UI_HEADERS,
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
}
_PASSED = {"content-type", "content-disposition", "cache-control", "etag", "last-modified"}


def _same_site(request: Request) -> None:
    """Refuse a change a page of another site asks for with a dashboard session (a browser says where a
    request comes from; another site cannot send JSON without asking first)."""
    if request.method in ("GET", "HEAD"):
        return
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin" or not request.headers.get(
        "content-type", ""
    ).startswith("application/json"):
        raise Refused("a change through MLflow's web UI is taken only from the UI's own pages")


def _this_machine(request: Request) -> None:
    """Refuse a request to a host name that is not this machine's: a page of another site that had its name
    resolve to 127.0.0.1 (DNS rebinding) would otherwise be a page of this origin."""
    host = foreign_host(request.headers.get("host", ""))
    if host is not None:
        raise Refused(f"open this page as http://127.0.0.1 or http://localhost, not as {host}")


def ui_routes(handle: Callable[[Request], Awaitable[Response]]) -> list[BaseRoute]:
    """The routes of MLflow's UI for dev (``handle`` serves them): ``/ui/mlflow/`` and what is below it
    (``/ui/mlflow`` goes to its folder, as the UI's links are relative to it)."""

    async def folder(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/mlflow/", status_code=307)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route("/ui/mlflow", folder), Route("/ui/mlflow/{path:path}", handle, methods=methods)]


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
    """The ``/mlflow/{workspace}/{path}`` route of the control plane (a token signs in), and
    ``/ui/mlflow/{path}``, MLflow's web UI for dev (the dashboard's session signs in)."""

    def __init__(
        self,
        root: Path,
        principal: Callable[[Request], access.Principal],
        session: Callable[[Request], access.Principal | None],
        max_upload_mb: int,
        *,
        local: bool = False,
    ) -> None:
        self.root = root
        self.principal = principal
        self.session = session
        self.local = local
        """``loopline ui``'s: the person at this machine, who may change any run of dev (they hold its
        store); a page of a name that is no address of this machine (DNS rebinding) is refused."""
        self.max_upload = max_upload_mb << 20
        self.backend = Backend(root)
        self.released = Released(root, principal)
        self.makers = _Makers(root)
        self.versions = VersionFiles(root)

    @classmethod
    def for_this_machine(cls, root: Path) -> Tracking:
        """``loopline ui``'s: MLflow's UI for dev for the person at this machine (they hold dev's store, so
        they may change any of its runs), and no tracking URI."""
        from loopline.instance import current_actor

        def person(_request: Request) -> access.Principal:
            return access.Principal(current_actor(root), {access.ALL_WORKSPACES: access.Role.ADMIN}, "")

        def no_token(_request: Request) -> access.Principal:
            raise NotFound(
                "`loopline ui` serves no tracking URI: log to dev's store (`loopline status --json`)"
            )

        settings = Instance.open(root).settings.config.control_plane
        return cls(root, no_token, person, settings.max_upload_mb, local=True)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """The lifespan of the application that serves these routes: MLflow's server ends with it."""
        try:
            yield
        finally:
            await self.backend.stop()
            await self.released.stop()

    def _owner(self, principal: access.Principal) -> str | None:
        """Who must have made what the caller changes (None: anyone; the person at this machine)."""
        return None if self.local else principal.user

    def _location(self) -> tuple[Any, str]:
        return served_location(Instance.open(self.root), WORKSPACE, "use it directly (its API and its UI)")

    def _admit(
        self, request: Request, kind: str, principal_of: Callable[[Request], access.Principal | None]
    ) -> tuple[access.Principal, Any, str]:
        """The caller, signed in and allowed ``kind`` of call (a refusal audited), and dev's store."""
        from loopline.operations import Operation, authorize
        from loopline.rules import DEVELOP, READ_ANY

        principal = principal_of(request)
        if principal is None:
            raise Unauthenticated(problem="sign in first")
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
        """The ``/mlflow/{workspace}/{path}`` route (a token): sign in, check, pass to MLflow's server,
        answer with files' URIs as this proxy serves them."""
        request.state.user = "-"
        try:
            workspace, path = request.path_params["workspace"], request.path_params["path"]
            if workspace != WORKSPACE:
                return await self.released(request, workspace, path)
            kind, named = classify(request.method, path)
            return await self._pass(request, self.principal, kind, named, path)
        except LooplineError as error:
            return mlflow_error(error)

    async def browse(self, request: Request) -> Response:
        """The ``/ui/mlflow/{path}`` route: MLflow's web UI for dev, for a dashboard session (its cookie);
        the same decisions as for a token. A page asked for without a session goes to the sign-in."""
        request.state.user = "-"
        path = request.path_params["path"]
        try:
            _same_site(request)
            if self.local:
                _this_machine(request)
            kind, named = classify_browser(request.method, path)
            response = await self._pass(request, self.session, kind, named, path)
            response.headers.update(_PAGE_HEADERS if path == "" else _UI_HEADERS)
            return response
        except Unauthenticated as error:
            if path == "" and request.method == "GET":
                return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/signin", status_code=303)
            return mlflow_error(error)
        except LooplineError as error:
            return mlflow_error(error)

    async def _pass(
        self,
        request: Request,
        principal_of: Callable[[Request], access.Principal | None],
        kind: str,
        named: str | None,
        route: str,
    ) -> Response:
        principal, location, artifacts = await run_in_threadpool(self._admit, request, kind, principal_of)
        api = route.removeprefix("ajax-")  # MLflow's server answers its UI's calls as the API's
        if request.method == "GET" and api.startswith(LISTING):  # a registered version's files?
            inside = request.query_params.get("path", "") if api == LISTING else api[len(LISTING) + 1 :]
            if (version := RegistryFiles.named(inside)) is not None:
                return await self._versions(location).answer(*version, listing=api == LISTING)
        if api.startswith("api/2.0/mlflow-artifacts/") or STATIC.fullmatch(route) or route in UI_FILES:
            return await self._files(request, route, principal, kind, named or "", location, artifacts)
        return await self._api(request, route, principal, kind, named, location, artifacts)

    async def _api(
        self,
        request: Request,
        route: str,
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
        refuse_nul(dict(request.query_params))  # no store keeps one: a search of one fails in PostgreSQL
        if kind != READ:
            try:
                data = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError:
                raise UsageError("the request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise UsageError("the request body is not a JSON object")
            refuse_nul(data)
            checked = await run_in_threadpool(
                self._checked, principal, kind, route, data, model_id, artifacts
            )
            body = orjson.dumps(checked)
        url = await self.backend.url(location, artifacts)
        answer = await self.backend.client().request(
            request.method,
            f"{url}/{route}",
            params=request.query_params,
            content=body or None,
            headers={"content-type": "application/json"} if body else {},
        )
        versions, content = self._versions(location), _as_served(answer.content, artifacts)
        # the first answer asks the model store how it names its files: off the event loop
        content = (
            versions.served(content) if versions.known else await run_in_threadpool(versions.served, content)
        )
        return Response(
            content,
            answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    def _versions(self, location: Any) -> RegistryFiles:
        """The files of dev's registered versions, as this proxy serves them."""
        return self.versions.of(WORKSPACE, location)

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
        user, owner = principal.user, self._owner(principal)
        if kind == CREATE_RUN:
            return {**data, "user_id": user, "tags": _stamped(data.get("tags") or [], user)}
        if kind == CREATE_EXPERIMENT:
            # A new experiment's files go under dev's artifact root, whatever location was asked for.
            where = f"{artifacts}/experiments/{uuid.uuid4().hex}"
            return {**data, "artifact_location": where, "tags": _stamped(data.get("tags") or [], user)}
        if kind == CREATE_MODEL:
            if source := data.get("source_run_id"):
                self.makers.owned(RUN, str(source), owner)
            return {**data, "tags": _stamped(data.get("tags") or [], user)}
        _refuse_reserved(data.get("tags"))
        if route.endswith("-tag"):  # set-tag, delete-tag and their experiment twins name one key
            _refuse_reserved([{"key": data.get("key")}])
        if kind == RUN:
            self.makers.owned(RUN, str(data.get("run_id") or data.get("run_uuid") or ""), owner)
        elif kind == EXPERIMENT:
            self.makers.owned(EXPERIMENT, str(data.get("experiment_id") or ""), owner)
        elif kind == MODEL:
            self.makers.owned(MODEL, model_id or "", owner)
        return data

    async def _files(
        self,
        request: Request,
        route: str,
        principal: access.Principal,
        kind: str,
        path: str,
        location: Any,
        artifacts: str,
    ) -> Response:
        if kind == FILES:
            await run_in_threadpool(self._writable, principal, path, artifacts)
        url = await self.backend.url(location, artifacts)
        target = f"{url}/{route}"
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
        if request.method != "GET" or route.removeprefix("ajax-") == LISTING:
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

        passed = {k: v for k, v in answer.headers.items() if k.lower() in _PASSED}
        if not STATIC.fullmatch(route):  # a file of dev's: never a page of this site's origin
            passed.update({"content-security-policy": "sandbox", "x-content-type-options": "nosniff"})
        return StreamingResponse(body(), answer.status_code, headers=passed)

    def _writable(self, principal: access.Principal, path: str, artifacts: str) -> None:
        """Refuse a file path that is not under a run or logged model the caller made."""
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in path:
            raise UsageError(f"the file path {path[:120]!r} is not a plain relative path")
        if model := MODEL_FILES.search(path):
            home = self.makers.owned(MODEL, model.group(1), self._owner(principal))
        elif run := RUN_FILES.search(path):
            home = self.makers.owned(RUN, run.group(1), self._owner(principal))
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

    def owned(self, what: str, ident: str, user: str | None) -> str:
        """The artifact URI of ``what`` ``ident``, refused unless ``user`` made it (any maker for None)."""
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
        if user is not None and maker != user:
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
    spool, size = tempfile.TemporaryFile(), 0  # noqa: SIM115 (closed by the caller, or here on failure)
    try:
        async for chunk in bounded_stream(request, limit, too_large):
            size += len(chunk)
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

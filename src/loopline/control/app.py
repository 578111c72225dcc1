"""``loopline server``: the control plane, every SDK operation over HTTP with tokens and roles.

``POST /v1/<operation>`` takes the operation's arguments as a JSON object and answers its result as JSON
(``GET /openapi.json`` documents each); the routes are the operation table's (``operations.py``). Every
call carries ``Authorization: Bearer <token>``; the operation runs as the token's user, so its rule is
checked (and a refusal audited) before anything runs, and what it lists is what that user may read. A
caller that accepts ``application/x-ndjson`` gets a long operation's progress as it happens, then its
result. The server holds the database and store credentials; its callers do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import tempfile
import time
import traceback
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from loopline import access
from loopline.api import import_inner_loop
from loopline.control.openapi import NAMING_UPLOADS, document
from loopline.control.tracking import Tracking, ui_routes
from loopline.errors import LooplineError, NotFound, RateLimited, TooLarge, Unauthenticated, UsageError
from loopline.instance import Instance
from loopline.net import bounded_stream, read_body
from loopline.operations import Operation, acting, authorize, invoke, operations, refuse_nul
from loopline.remote.client import STREAM
from loopline.remote.codec import signature
from loopline.remote.data import DataFile, DataUpload
from loopline.remote.upload import InnerLoopUpload, extract, unpack
from loopline.rules import DEVELOP
from loopline.ui.app import build_ui

__all__ = ["FailureLimiter", "build_app"]

log = logging.getLogger("loopline.server")

MAX_BODY = 1 << 20
"""Largest accepted JSON body, in bytes (arguments are small; model files come as uploads)."""


class FailureLimiter:
    """Refuses an address after ``limit`` failed sign-ins within ``window`` seconds (per server process)."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures[address]
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures

    def check(self, address: str) -> None:
        """Raise RateLimited while ``address`` is over the limit."""
        failures = self._recent(address)
        if len(failures) >= self.limit:
            wait = int(failures[0] + self.window - time.monotonic()) + 1
            raise RateLimited(address=address, seconds=wait)

    def failed(self, address: str) -> None:
        """Count one failed sign-in from ``address``."""
        self._recent(address).append(time.monotonic())


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _error(error: LooplineError) -> Response:
    body = error.to_dict()
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.fields.get("seconds", 60))
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return _json(body, error.http_status, headers)


def client_address(request: Request, trusted: list[Any]) -> str:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the nearest address in
    X-Forwarded-For that is not one (proxies append, so what a client wrote itself comes first)."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return peer


def _trusted(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class ControlPlane:
    """The request handling of the control plane, around one project's instance."""

    def __init__(self, root: Path) -> None:
        self.root = root
        settings = self.settings = Instance.open(root).settings.config.control_plane
        self.limiter = FailureLimiter(settings.max_failed_sign_ins, settings.sign_in_window_seconds)
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def address(self, request: Request) -> str:
        """Where a request comes from, as the sign-in limit counts it."""
        return client_address(request, self.proxies)

    def sign_in(self, token: str | None, address: str) -> access.Principal:
        """The caller a token belongs to; counts a failure against ``address`` (RateLimited when over)."""
        self.limiter.check(address)
        try:
            return access.authenticate(Instance.open(self.root).db, token)
        except Unauthenticated:
            self.limiter.failed(address)
            raise

    def principal(self, request: Request) -> access.Principal:
        """The authenticated caller of an API request, or Unauthenticated / RateLimited."""
        address = self.address(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme and scheme.lower() != "bearer":
            self.limiter.check(address)
            self.limiter.failed(address)
            raise Unauthenticated(problem="the Authorization header is not 'Bearer <token>'")
        return self.sign_in(token.strip() or None, address)

    def authorize(self, principal: access.Principal, name: str, arguments: dict[str, Any]) -> None:
        """Refuse, and audit the refusal, unless the caller's role allows this operation."""
        authorize(Instance.open(self.root), operations()[name], arguments, principal)

    def call(self, principal: access.Principal, name: str, arguments: dict[str, Any]) -> Any:
        """Run the operation as the caller: their role checked, what it lists filtered for them."""
        with acting(principal):
            return invoke(operations()[name], arguments, project=self.root)

    def handler(self, name: str, work: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Any]:
        """A Starlette handler around ``work``: the one error boundary and the one log line per call."""

        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            request.state.user = "-"
            try:
                answer = await work(request)
                response = answer if isinstance(answer, Response) else _json(answer)
            except LooplineError as error:
                response = _error(error)
            except Exception:
                log.error("unexpected error in %s:\n%s", name, traceback.format_exc())
                response = _json(
                    {
                        "error_code": "INTERNAL",
                        "message": f"{name} failed unexpectedly; the control plane's log has the details",
                        "exit_code": 4,
                    },
                    500,
                )
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            line = {
                "operation": name,
                "user": request.state.user,
                "status": response.status_code,
                "ms": elapsed,
            }
            log.info(orjson.dumps(line).decode())
            return response

        return handle

    async def _signed_in(self, request: Request) -> access.Principal:
        principal = await run_in_threadpool(self.principal, request)
        request.state.user = principal.user
        return principal

    async def _json_body(self, request: Request, name: str) -> Any:
        """The JSON body, refused as soon as it is known to be, or streams past, ``MAX_BODY`` bytes."""
        too_large = TooLarge(f"the request body is over {MAX_BODY} bytes; send smaller arguments")
        body = await read_body(request, MAX_BODY, too_large)
        try:
            return orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise UsageError(f"the body of {name} is not valid JSON") from None

    def function(self, name: str) -> Callable[[Request], Any]:
        """The handler of one operation: arguments in, result out (or progress, then the result)."""
        op = operations()[name]
        shape = signature(op)
        reports = "reporter" in inspect.signature(op.function).parameters

        async def work(request: Request) -> Any:
            principal = await self._signed_in(request)
            arguments = shape.decode_arguments(await self._json_body(request, name))
            if reports and STREAM in request.headers.get("accept", ""):
                await run_in_threadpool(self.authorize, principal, name, arguments)
                return self._streamed(principal, name, arguments, shape.encode_result)
            result = await run_in_threadpool(self.call, principal, name, arguments)
            return shape.encode_result(result)

        return self.handler(name, work)

    def _streamed(
        self,
        principal: access.Principal,
        name: str,
        arguments: dict[str, Any],
        encode: Callable[[Any], Any],
    ) -> Response:
        """Run the operation in a thread, streaming its progress lines, then its result or error."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()

        def send(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(lines.put_nowait, orjson.dumps(event) + b"\n")

        class Relay:
            def step(self, message: str) -> None:
                send({"step": message})

            def output(self, line: str) -> None:
                send({"output": line})

        def run() -> None:
            try:
                send({"result": encode(self.call(principal, name, {**arguments, "reporter": Relay()}))})
            except LooplineError as error:
                send({"error": error.to_dict(), "status": error.http_status})
            except Exception:
                log.error("unexpected error in %s:\n%s", name, traceback.format_exc())
                failure = {"error_code": "INTERNAL", "message": f"{name} failed unexpectedly", "exit_code": 4}
                send({"error": failure, "status": 500})
            finally:
                loop.call_soon_threadsafe(lines.put_nowait, None)

        async def body() -> Any:
            done = loop.run_in_executor(None, run)
            while (line := await lines.get()) is not None:
                yield line
            await done

        return StreamingResponse(body(), media_type=STREAM)

    @property
    def uploads(self) -> Path:
        """Where uploaded runs wait for their ``inner_loop`` call (on this server's disk)."""
        folder = Instance.open(self.root).settings.state_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def _receive_upload(self, request: Request) -> Any:
        principal = await self._signed_in(request)
        purpose = request.query_params.get("for", "inner_loop")  # the call that will name the upload
        if purpose not in _UPLOADED:
            raise UsageError(f"an upload is for {' or '.join(_UPLOADED)}, not {purpose[:40]!r}")
        await run_in_threadpool(self.authorize, principal, purpose, {})
        folder = self.uploads
        _forget_stale(folder)
        limits = self.settings
        limit = limits.max_upload_mb << 20
        too_large = TooLarge(
            f"the upload is over {limits.max_upload_mb} MB (control_plane.max_upload_mb, set where the "
            "control plane runs)"
            + (
                "; or copy the files into the inbox with this machine's credentials for it: "
                "`loopline data upload NAME SOURCE --direct`"
                if purpose == "upload_data"
                else ""
            )
        )
        upload = uuid.uuid4().hex
        part, size = folder / f"{upload}.part", 0
        try:
            with part.open("wb") as out:
                async for chunk in bounded_stream(request, limit, too_large):
                    size += len(chunk)
                    out.write(chunk)
        except BaseException:  # over the limit, or the client went away: nothing stays behind
            part.unlink(missing_ok=True)
            raise
        (folder / f"{upload}.owner").write_text(principal.user)
        part.rename(folder / f"{upload}.tar.gz")
        return {"upload": upload, "bytes": size}

    async def _inner_loop(self, request: Request) -> Any:
        principal = await self._signed_in(request)
        body = _validated(InnerLoopUpload, await self._json_body(request, "inner_loop"), "inner_loop")
        await run_in_threadpool(self.authorize, principal, "inner_loop", {})
        result = await run_in_threadpool(self._import, principal, body)
        return signature(operations()["inner_loop"]).encode_result(result)

    def _uploaded(self, principal: access.Principal, upload: str, what: str) -> tuple[Path, Path]:
        """The archive of the caller's upload ``upload``, and its owner file."""
        folder = self.uploads
        archive, owner = folder / f"{upload}.tar.gz", folder / f"{upload}.owner"
        if not archive.is_file() or owner.read_text() != principal.user:
            raise NotFound(f"upload {upload} does not exist (or is not yours); upload {what} again")
        return archive, owner

    async def _upload_data(self, request: Request) -> Any:
        principal = await self._signed_in(request)
        body = _validated(DataUpload, await self._json_body(request, "upload_data"), "upload_data")
        await run_in_threadpool(self.authorize, principal, "upload_data", {})
        result = await run_in_threadpool(self._import_data, principal, body)
        return signature(operations()["upload_data"]).encode_result(result)

    def _import_data(self, principal: access.Principal, body: DataUpload) -> Any:
        archive, owner = self._uploaded(principal, body.upload, "the files")
        try:
            with tempfile.TemporaryDirectory() as scratch:
                limits = self.settings
                extract(
                    archive,
                    Path(scratch),
                    limits.max_upload_expanded_mb << 20,
                    limits.max_upload_files,
                    "files",
                )
                folder = Path(scratch) / "data"
                found = sorted(folder.iterdir()) if folder.is_dir() else []
                if not found or (body.single and (len(found) > 1 or not found[0].is_file())):
                    one = "one file" if body.single else "the files"
                    raise UsageError(f"the upload holds no data/ folder with {one}; upload {one} again")
                source = found[0] if body.single else folder
                arguments = {"name": body.name, "source": source, "digest": body.digest}
                with acting(principal):
                    return invoke(operations()["upload_data"], arguments, project=self.root)
        finally:
            archive.unlink(missing_ok=True)
            owner.unlink(missing_ok=True)

    async def _data_file(self, request: Request) -> Any:
        principal = await self._signed_in(request)
        body = _validated(DataFile, await self._json_body(request, "data_file"), "data_file")
        await run_in_threadpool(authorize, Instance.open(self.root), _DATA_FILE, {}, principal)
        return await run_in_threadpool(self._open_data_file, principal, body)

    def _open_data_file(self, principal: access.Principal, body: DataFile) -> Response:
        with acting(principal):
            asset = invoke(
                operations()["get_data"], {"name": body.name, "version": body.version}, project=self.root
            )
        entry = next((e for e in asset.manifest if e["path"] == body.path), None)
        if entry is None:
            raise NotFound(f"data asset {asset.name}:{asset.version} holds no file {body.path[:100]!r}")
        store = Instance.open(self.root).datastore(asset.datastore)
        try:
            handle = store.open(entry["file"])
        except FileNotFoundError:
            raise NotFound(
                f"the file {body.path[:100]!r} of data asset {asset.name}:{asset.version} is gone from "
                f"{asset.reference}; register the data again"
            ) from None

        def read() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        return StreamingResponse(read(), media_type="application/octet-stream")

    def _import(self, principal: access.Principal, body: InnerLoopUpload) -> Any:
        archive, owner = self._uploaded(principal, body.upload, "the run")
        try:
            refuse_nul(body.model_dump())
            with tempfile.TemporaryDirectory() as scratch:
                limits = self.settings
                model_dir, artifacts, record = unpack(
                    archive, Path(scratch), limits.max_upload_expanded_mb << 20, limits.max_upload_files
                )
                refuse_nul({"the upload's run.json": record.model_dump() if record else None})
                with acting(principal):
                    return import_inner_loop(
                        model_dir,
                        artifacts,
                        **body.identity.model_dump(),
                        **body.run.model_dump(),
                        model=body.model,
                        allow_dirty=body.allow_dirty,
                        attestation=body.attestation,
                        record=record,
                        project=self.root,
                    )
        finally:
            archive.unlink(missing_ok=True)
            owner.unlink(missing_ok=True)


_DATA_FILE = Operation("data_file", import_inner_loop, DEVELOP)
"""Reading the bytes of a data asset's file: for those who train on them, as the inner loop does (the
row's function is not called: the route streams the file)."""

_UPLOADED = tuple(NAMING_UPLOADS)
"""The calls that name an upload."""

Body = TypeVar("Body", bound=BaseModel)


def _validated(model: type[Body], data: Any, name: str) -> Body:
    """A request body as ``model``; a usage error names the first argument that is not valid."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise UsageError(f"argument {where} of {name} is not valid: {exc.errors()[0]['msg']}") from None


def _forget_stale(folder: Path, age: float = 86_400) -> None:
    """Delete uploads nobody registered within a day."""
    horizon = time.time() - age
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < horizon:
                path.unlink()


class TokenAccess:
    """The dashboard's sign-in on the control plane: the token in an HttpOnly cookie, roles as for the API."""

    needs_sign_in = True
    cookie = "loopline_token"

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def _principal(self, request: Request) -> access.Principal | None:
        """The session's user; a cookie that no longer signs in counts as a failed sign-in, as on the
        API (one limit for both)."""
        token = request.cookies.get(self.cookie)
        if not token:
            return None
        if "principal" in request.state._state:  # once per request, however often a page asks
            return cast(access.Principal | None, request.state.principal)
        try:
            principal: access.Principal | None = self.plane.sign_in(token, self.plane.address(request))
        except (Unauthenticated, RateLimited):
            principal = None
        request.state.principal = principal
        return principal

    def user(self, request: Request) -> str | None:
        principal = self._principal(request)
        return principal.user if principal else None

    def secret(self, request: Request) -> str:
        return request.cookies.get(self.cookie, "")

    def principal(self, request: Request) -> access.Principal | None:
        principal = self._principal(request)
        if principal is None:
            raise Unauthenticated(problem="the dashboard session ended")
        return principal

    def sign_in(self, token: str, request: Request) -> str:
        return self.plane.sign_in(token or None, self.plane.address(request)).user


def build_app(root: Path) -> Starlette:
    """The control plane's ASGI application for the project at ``root``."""
    plane = ControlPlane(root)
    spec = document()

    async def openapi(_request: Request) -> Response:
        return _json(spec)

    async def healthz(_request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        """Ready when loopline's database answers (what a load balancer or Kubernetes asks)."""
        try:
            await run_in_threadpool(lambda: Instance.open(root).db.revision())
        except LooplineError as exc:
            return _json({"ready": False, "reason": exc.message}, 503)
        return _json({"ready": True})

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/", status_code=307)

    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/", home),
    ]
    session = TokenAccess(plane)
    tracking = Tracking(root, plane.principal, session.principal, plane.settings.max_upload_mb)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes += [
        Route("/mlflow/{workspace}/{path:path}", plane.handler("mlflow", tracking), methods=methods),
        *ui_routes(plane.handler("mlflow-ui", tracking.browse)),
        Mount("/ui", app=build_ui(root, session, mlflow_ui=True)),
    ]
    routes.append(Route("/v1/uploads", plane.handler("uploads", plane._receive_upload), methods=["POST"]))
    routes.append(Route("/v1/inner_loop", plane.handler("inner_loop", plane._inner_loop), methods=["POST"]))
    routes.append(
        Route("/v1/upload_data", plane.handler("upload_data", plane._upload_data), methods=["POST"])
    )
    routes.append(Route("/v1/data_file", plane.handler("data_file", plane._data_file), methods=["POST"]))
    routes += [
        Route(f"/v1/{op.name}", plane.function(op.name), methods=["POST"])
        for op in operations().values()
        if op.remote and op.name not in _UPLOADED
    ]

    return Starlette(routes=routes, lifespan=tracking.lifespan)

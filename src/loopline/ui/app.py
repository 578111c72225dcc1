"""The dashboard: server-rendered pages (Jinja2) over the SDK, with three actions behind confirm dialogs
(rollback, traffic, a batch endpoint's default) and the approvers' decisions on releases.

``loopline ui`` serves it for the person at this machine (who holds the stores' credentials anyway); the
control plane serves it at ``/ui`` to signed-in users, whose token and role decide what they may do.
Every asset is served from here: the pages make no request to any other host.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from loopline import api
from loopline.access import Principal
from loopline.errors import LooplineError, TooLarge, UsageError
from loopline.instance import acting_as, current_actor
from loopline.net import foreign_host, read_body
from loopline.operations import acting, call
from loopline.ui import views

__all__ = ["Access", "LocalAccess", "build_ui", "local_app"]

PREFIX = "/ui"
_COMMIT = re.compile(r"^[0-9a-fA-F]{4,40}$")
HISTORY_ROWS = 500  # the newest events the history page shows


class Access(Protocol):
    """Who is asking. What they may see and do is the operation table's business (operations.py): every
    page and action calls the SDK as them, so the dashboard allows and filters exactly as the API does."""

    needs_sign_in: bool

    def user(self, request: Request) -> str | None:
        """The signed-in user, or None."""

    def secret(self, request: Request) -> str:
        """What the request's CSRF token is derived from (the session's identity)."""

    def principal(self, request: Request) -> Principal | None:
        """The signed-in caller, whose roles are checked; None for the person at this machine."""

    def sign_in(self, token: str, request: Request) -> str:
        """Check a token sent with ``request`` (failures count against where it came from); its user."""


class LocalAccess:
    """The person at this machine: allowed everything the stores' credentials allow."""

    needs_sign_in = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def user(self, request: Request) -> str | None:
        return current_actor(self.root)

    def secret(self, request: Request) -> str:
        return "local"

    def principal(self, request: Request) -> Principal | None:
        return None

    def sign_in(self, token: str, request: Request) -> str:
        raise UsageError("this dashboard has no sign-in; it acts as the user at this machine")


def prefix(request: Request) -> str:
    """Where the dashboard is, as the browser sees it: ``/ui``, after the path a reverse proxy serves
    loopline under (``control_plane.root_path``)."""
    return str(request.scope.get("root_path", "")) or PREFIX


class Dashboard:
    """The pages and actions of one instance's dashboard."""

    def __init__(self, root: Path, access: Access) -> None:
        self.root = root
        self.access = access
        self.key = secrets.token_bytes(32)
        self.templates = Environment(
            loader=PackageLoader("loopline.ui", "templates"), autoescape=select_autoescape(["html"])
        )
        self.templates.globals.update(ago=views.ago, quote=quote)

    def csrf(self, request: Request) -> str:
        """The form token of this session: forms posted from other sites do not have it."""
        return hmac.new(self.key, self.access.secret(request).encode(), hashlib.sha256).hexdigest()[:32]

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page, with the user, the CSRF token and any flash message."""
        context.setdefault("flash", request.query_params.get("flash"))
        context.setdefault("error", request.query_params.get("error"))
        page = self.templates.get_template(name).render(
            user=self.access.user(request),
            sign_in=self.access.needs_sign_in,
            csrf=self.csrf(request),
            page=name.removesuffix(".html"),
            prefix=prefix(request),
            **context,
        )
        return HTMLResponse(page, status_code=status)

    def page(
        self, name: str, build: Callable[[Request], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A GET handler that renders ``name`` with what ``build`` computes (via the SDK, in a thread)."""

        async def handle(request: Request) -> Response:
            if self.access.needs_sign_in and self.access.user(request) is None:
                return RedirectResponse(f"{prefix(request)}/signin", status_code=303)
            try:
                context = await run_in_threadpool(self._as_user, request, build)
            except LooplineError as error:
                return self.render(request, "error.html", error.http_status, message=error.message)
            return self.render(request, name, **context)

        return handle

    def _as_user(self, request: Request, build: Callable[[Request], Any]) -> Any:
        """``build`` as the caller: every SDK call in it checked and filtered for them."""
        principal = self.access.principal(request)
        if principal is not None:
            with acting(principal):
                call(api.status, project=self.root)  # a page needs the right to see the instance at all
                return build(request)
        with acting_as(self.access.user(request) or "unknown"):
            return build(request)

    # Pages ---------------------------------------------------------------------------------------------

    def topology(self, request: Request) -> dict[str, Any]:
        return {"topology": views.topology(self.root)}

    def models(self, request: Request) -> dict[str, Any]:
        model = request.query_params.get("model") or None
        commit = request.query_params.get("commit") or None
        shown = views.models_page(self.root, model, commit, _whole_number(request, "page") or 1)
        filters = {k: v for k, v in (("model", model), ("commit", commit)) if v}
        return {
            "rows": shown.rows,
            "names": shown.names,
            "model": model,
            "commit": commit,
            "repository": shown.repository,
            "shown": shown,
            "newer": urlencode({**filters, "page": shown.page - 1}) if shown.page > 1 else None,
            "older": urlencode({**filters, "page": shown.page + 1}) if shown.page < shown.pages else None,
        }

    def endpoints(self, request: Request) -> dict[str, Any]:
        return {"endpoints": views.endpoints_page(self.root)}

    def batch(self, request: Request) -> dict[str, Any]:
        return {"endpoints": views.batch_page(self.root), "shown_jobs": views.BATCH_JOBS}

    def experiments(self, request: Request) -> dict[str, Any]:
        return views.experiments_page(self.root)

    def approvals(self, request: Request) -> dict[str, Any]:
        return {"requests": call(api.approval_requests, project=self.root)}

    def history(self, request: Request) -> dict[str, Any]:
        filters = {k: request.query_params.get(k) or None for k in ("commit", "workspace", "actor")}
        before = _whole_number(request, "before")
        records = call(api.history, self.root, limit=HISTORY_ROWS + 1, before=before, **filters)
        shown = list(reversed(records))[:HISTORY_ROWS]
        kept = {k: v for k, v in filters.items() if v}
        return {
            "records": shown,
            "filters": filters,
            "before": before,
            "newest": urlencode(kept) if before is not None else None,
            # older events than the page shows: the page before its oldest
            "older": urlencode({**kept, "before": shown[-1].seq}) if len(records) > HISTORY_ROWS else None,
        }

    def commit(self, request: Request) -> dict[str, Any]:
        sha = request.path_params["sha"]
        if not _COMMIT.match(sha):
            raise UsageError(f"'{sha}' is not a commit id")
        versions, records = views.commit_page(self.root, sha)
        return {
            "sha": sha,
            "versions": versions,
            "records": records,
            "repository": call(api.status, self.root).repository_url,
        }

    def report(self, request: Request) -> dict[str, Any]:
        sha = request.path_params["sha"]
        if not _COMMIT.match(sha):
            raise UsageError(f"'{sha}' is not a commit id")
        return {"report": call(api.validation_report, sha, project=self.root)}

    async def metrics(self, request: Request) -> Response:
        if self.access.needs_sign_in and self.access.user(request) is None:
            return JSONResponse({"error_code": "UNAUTHENTICATED", "message": "sign in first"}, 401)
        name, workspace = request.path_params["name"], request.path_params["workspace"]

        def load() -> Any:
            return call(api.endpoint_metrics, name, workspace=workspace, project=self.root).to_dict()

        try:
            return JSONResponse(await run_in_threadpool(self._as_user, request, lambda _r: load()))
        except LooplineError as error:
            return JSONResponse({"error_code": error.error_code, "message": error.message}, error.http_status)

    # Actions -------------------------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """POST /actions/ACTION (rollback, traffic, batch-default, approve, deny): check the form, the role,
        then do it as the user."""
        if self.access.needs_sign_in and self.access.user(request) is None:
            return RedirectResponse(f"{prefix(request)}/signin", status_code=303)
        action = request.path_params["action"]
        back = prefix(request) + _BACK.get(action, "/endpoints")
        try:
            form = await read_form(request)
        except LooplineError as error:
            return self._back(back, error=error.message)
        if not hmac.compare_digest(str(form.get("csrf", "")), self.csrf(request)):
            return self._back(back, error="the form expired; reload the page and try again")
        try:
            operation, arguments = _action(action, form)
            message = await run_in_threadpool(self._run, request, operation, arguments)
        except LooplineError as error:
            return self._back(back, error=_as_the_form_says(action, error.message))
        return self._back(back, flash=message)

    def _run(self, request: Request, operation: str, arguments: dict[str, Any]) -> str:
        def act(_request: Request) -> str:
            if operation == "rollback":
                return call(api.rollback, self.root, **arguments).message
            if operation == "batch_promote":
                return call(api.batch_promote, project=self.root, **arguments).message
            if operation == "approve":
                done = call(api.approve, project=self.root, **arguments)
                if arguments["retire"]:
                    return f"{done.decision} retiring prod's endpoint {arguments['retire']}"
                return f"{done.decision} {done.model} v{done.version} ({done.git_commit[:7]}) for prod"
            info = call(api.set_traffic, project=self.root, **arguments)
            shown = ", ".join(f"{name} {share}%" for name, share in info.traffic.items())
            return f"traffic of {info.name} is now {shown}"

        return str(self._as_user(request, act))

    @staticmethod
    def _back(url: str, **message: str) -> Response:
        return RedirectResponse(f"{url}?{urlencode(message)}", status_code=303)

    # Sign-in (control plane only) ---------------------------------------------------------------------

    async def signin(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "signin.html")
        try:
            form = await read_form(request)
            token = str(form.get("token", "")).strip()
            user = await run_in_threadpool(self.access.sign_in, token, request)
        except LooplineError as error:
            # The form again, with the reason (a 200: the page itself loaded fine; 413 for a form over the
            # limit, whose sender may still be sending).
            status = error.http_status if isinstance(error, TooLarge) else 200
            return self.render(request, "signin.html", status, error=error.message)
        response = RedirectResponse(
            f"{prefix(request)}/?{urlencode({'flash': f'signed in as {user}'})}", status_code=303
        )
        response.set_cookie(
            "loopline_token",
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=prefix(request),
        )
        return response

    async def signout(self, request: Request) -> Response:
        response = RedirectResponse(f"{prefix(request)}/signin", status_code=303)
        response.delete_cookie("loopline_token", path=prefix(request))
        return response


def _whole_number(request: Request, name: str) -> int | None:
    """The query's ``name`` as a page's number takes it, or None: ASCII digits only (``"²".isdigit()`` is
    true, and ``int("²")`` fails), no more of them than a database's integer holds."""
    asked = request.query_params.get(name, "")
    return int(asked) if asked.isascii() and asked.isdigit() and len(asked) <= 18 else None


FORM_BYTES = 64 << 10
"""The most a dashboard form may send: its fields are a few names, a token and a reason."""


async def read_form(request: Request) -> FormData:
    """The posted form, read no further than FORM_BYTES (the page is reached before sign-in), in the one
    encoding the dashboard's forms use: no upload, no field over the limit, whoever sends it."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UsageError("the dashboard takes its own forms only (application/x-www-form-urlencoded)")
    too_large = TooLarge(f"the form is over {FORM_BYTES >> 10} KiB; give a shorter reason")
    body = await read_body(request, FORM_BYTES, too_large)
    fields: list[tuple[str, str | UploadFile]] = [*parse_qsl(body.decode("utf-8", "replace"), True)]
    return FormData(fields)


_BACK = {"approve": "/approvals", "deny": "/approvals", "batch-default": "/batch"}
"""The page an action returns to, where it is not the endpoints page."""

_CLI_HINTS = {
    "batch-default": (
        "promote it with --breaking-change REASON",
        'tick "its answers change on purpose" and say why in the reason',
    )
}
"""A refusal's way out said as the command line says it, and as the action's form says it."""


def _as_the_form_says(action: str, message: str) -> str:
    """``message`` with its way out said as the action's form says it, where the command line's differs."""
    cli, form = _CLI_HINTS.get(action, (None, None))
    return message.replace(cli, form) if cli and form else message


def _action(action: str, form: Any) -> tuple[str, dict[str, Any]]:
    """The operation an action's form asks for, and its arguments."""
    read = _FORMS.get(action)
    if read is None:
        raise UsageError(f"there is no action '{action}'")
    reason = str(form.get("reason", "")).strip() or None
    return read(action, form, str(form.get("endpoint", "")), str(form.get("workspace", "")) or None, reason)


def _rollback(
    action: str, form: Any, endpoint: str, workspace: str | None, reason: str | None
) -> tuple[str, dict[str, Any]]:
    commit = str(form.get("commit", ""))
    if not _COMMIT.match(commit):
        raise UsageError("choose the commit to roll back to")
    return "rollback", {
        "endpoint": endpoint,
        "workspace": workspace,
        "commit": commit,
        "reason": reason or "from the dashboard",
    }


def _decision(
    action: str, form: Any, endpoint: str, workspace: str | None, reason: str | None
) -> tuple[str, dict[str, Any]]:
    retire = str(form.get("retire", "")) or None
    chosen = str(form.get("commit", ""))
    if retire is None and not _COMMIT.match(chosen):
        raise UsageError("choose the release to decide on")
    model = str(form.get("model", "")) or None
    decision = {"reason": reason or "", "deny": action == "deny"}
    return "approve", {"commit": chosen or None, "model": model, "retire": retire, **decision}


def _batch_default(
    action: str, form: Any, endpoint: str, workspace: str | None, reason: str | None
) -> tuple[str, dict[str, Any]]:
    deployment = str(form.get("deployment", ""))
    if not deployment:
        raise UsageError("choose the deployment to make the default")
    breaking = form.get("breaking") == "yes"
    if breaking and not reason:
        raise UsageError(
            "say in the reason why the answers of the new default change, and that what reads its "
            "predictions is ready for them"
        )
    return "batch_promote", {
        "endpoint": endpoint,
        "deployment": deployment,
        "workspace": workspace,
        # the default the page showed: refused if someone changed it since
        "expected_current": str(form.get("current", "")) or None,
        "reason": reason or "from the dashboard",
        "breaking_change": reason if breaking else None,
    }


def _traffic(
    action: str, form: Any, endpoint: str, workspace: str | None, reason: str | None
) -> tuple[str, dict[str, Any]]:
    shares = {}
    for key, value in form.multi_items():
        if key.startswith("share:"):
            try:
                shares[key.removeprefix("share:")] = int(str(value))
            except ValueError:
                raise UsageError(f"traffic of {key.removeprefix('share:')} must be a whole number") from None
    return "set_traffic", {"name": endpoint, "workspace": workspace, "traffic": shares, "reason": reason}


_FORMS: dict[str, Callable[[str, Any, str, str | None, str | None], tuple[str, dict[str, Any]]]] = {
    "rollback": _rollback,
    "approve": _decision,
    "deny": _decision,
    "batch-default": _batch_default,
    "traffic": _traffic,
}
"""What each action's form asks for: (action, form, endpoint, workspace, reason) to (operation, arguments)."""


SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Every dashboard answer with a CSP and X-Frame-Options: no framing (clickjacking a rollback button),
    no script or style but the dashboard's own files."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def build_ui(root: Path, access: Access | None = None, *, mlflow_ui: bool = False) -> Starlette:
    """The dashboard of the project at ``root``, to be mounted at ``/ui`` (its pages link to MLflow's UI
    for dev, at ``/ui/mlflow/``, where ``mlflow_ui`` says it is served there)."""
    board = Dashboard(root, access or LocalAccess(root))
    board.templates.globals["mlflow_ui"] = mlflow_ui
    static = Path(__file__).parent / "static"
    routes = [
        Route("/", board.page("topology.html", board.topology)),
        Route("/models", board.page("models.html", board.models)),
        Route("/endpoints", board.page("endpoints.html", board.endpoints)),
        Route("/endpoints/{workspace}/{name}/metrics.json", board.metrics),
        Route("/batch", board.page("batch.html", board.batch)),
        Route("/experiments", board.page("experiments.html", board.experiments)),
        Route("/approvals", board.page("approvals.html", board.approvals)),
        Route("/history", board.page("history.html", board.history)),
        Route("/commits/{sha}", board.page("commit.html", board.commit)),
        Route("/commits/{sha}/report", board.page("report.html", board.report)),
        Route("/actions/{action}", board.act, methods=["POST"]),
        Route("/signin", board.signin, methods=["GET", "POST"]),
        Route("/signout", board.signout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def local_app(root: Path, mlflow_ui: Sequence[BaseRoute] = (), lifespan: Any = None) -> Starlette:
    """``loopline ui``: the dashboard at ``/ui``, and ``/`` sending there; ``mlflow_ui``, the routes that
    serve MLflow's UI for dev below ``/ui/mlflow``, and the ``lifespan`` of what serves them."""

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{PREFIX}/", status_code=307)

    board = build_ui(root, mlflow_ui=bool(mlflow_ui))
    routes = [Route("/", home), *mlflow_ui, Mount(PREFIX, app=board)]
    return Starlette(routes=routes, middleware=[Middleware(ThisMachineOnly)], lifespan=lifespan)


class ThisMachineOnly:
    """``loopline ui`` answers a page asked for by an address (``127.0.0.1``, ``localhost``), never by
    another name: a site that made its name resolve to 127.0.0.1 (DNS rebinding) would otherwise read
    the dashboard's pages, their form tokens with them, and post its actions as the person at this
    machine, who may do anything."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # MLflow's UI (below /ui/mlflow/) refuses such a request itself, in the JSON its pages read.
        if scope["type"] == "http" and not scope["path"].startswith(f"{PREFIX}/mlflow"):
            given = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            host = foreign_host(given)
            if host is not None:
                said = f"open the dashboard as http://127.0.0.1 or http://localhost, not as {host}\n"
                await PlainTextResponse(said, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

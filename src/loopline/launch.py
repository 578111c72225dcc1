"""The commands that start something and block (a server, the dashboard, the control plane) or run the demo.

Only the command line imports this module: launching is a front end's business, not the SDK's. Each
launcher opens the instance the same way the SDK does and refuses what the SDK would refuse.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.domain import SHARED, Tier
from loopline.errors import UsageError
from loopline.instance import Instance
from loopline.net import bind, serve_until_stopped

if TYPE_CHECKING:
    from loopline.lifecycle import DemoResult
    from loopline.progress import Reporter

__all__ = ["demo", "serve", "server", "ui"]

PathLike = str | os.PathLike[str]


def _provisioned(project: PathLike | None) -> Instance:
    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return instance


def serve(
    workspace: str = "dev",
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    project: PathLike | None = None,
    starting: Callable[[str], None] | None = None,
) -> None:
    """Serve every online endpoint of a workspace until interrupted (blocks); ``starting`` is told the URL
    once the server holds its port (one another process holds fails first, and nothing is told)."""
    from urllib.parse import urlsplit

    from loopline.endpoints.client import listening_at
    from loopline.serving.server import serve as run

    instance = _provisioned(project)
    if workspace == SHARED:
        raise UsageError("the shared registry serves no endpoints; serve a workspace")
    instance.require_workspace(workspace)
    default = urlsplit(instance.settings.endpoints_url(workspace))
    taken = (
        "choose another --port"
        if port
        else f"give {workspace} another port: set workspaces.{workspace}.endpoints_url to "
        "http://127.0.0.1:PORT in loopline.yaml (serve listens there, and loopline's commands call it there)"
    )
    host, port = host or default.hostname or "127.0.0.1", port or default.port or 8700
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    # loopline's commands on this machine call the workspace's server where this one records it listens
    # (its endpoints_url, or the --port given), on the loopback address where it listens on every one.
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host)
    with contextlib.ExitStack() as recorded:

        def listening() -> None:
            recorded.enter_context(
                listening_at(instance, workspace, f"http://{local}:{port}" if local else url)
            )
            if starting:
                starting(url)

        run(instance.root, workspace, host, port, workers, listening, taken)


def _uvicorn(app: Any, host: str, port: int, root_path: str = "") -> None:
    import uvicorn

    from loopline.serving.guard import http_protocol

    sock = bind(host, port, reuse_port=False)
    # No proxy headers: the control plane decides whose X-Forwarded-For to believe (trusted_proxies).
    # Slow headers time out and connections are capped, as for `loopline serve`.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",  # what an application started (MLflow's server for its UI) ends with it
        proxy_headers=False,
        http=http_protocol(),
        root_path=root_path,  # the path a proxy strips: the dashboard's links carry it
    )
    serve_until_stopped(uvicorn.Server(config), sock)


def ui(*, host: str = "127.0.0.1", port: int = 8800, project: PathLike | None = None) -> None:
    """Serve the web dashboard for the person at this machine until interrupted (blocks)."""
    from loopline.control.tracking import Tracking, ui_routes
    from loopline.ui.app import local_app

    if url := os.environ.get("LOOPLINE_URL"):
        raise UsageError(
            f"LOOPLINE_URL is set: the control plane serves the dashboard; open {url.rstrip('/')}/ui/"
        )
    root = _provisioned(project).root
    tracking = Tracking.for_this_machine(root)  # MLflow's UI for dev, at /ui/mlflow/
    _uvicorn(local_app(root, ui_routes(tracking.browse), tracking.lifespan), host, port)


def server(*, host: str = "127.0.0.1", port: int = 8600, project: PathLike | None = None) -> None:
    """Serve the control plane (the SDK over HTTP, with tokens and roles) until interrupted (blocks)."""
    from loopline.control.app import build_app

    instance = _provisioned(project)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call is the control plane's own
    _uvicorn(build_app(instance.root), host, port, instance.settings.config.control_plane.root_path)


def demo(
    tier: str | Tier = Tier.FULL, keep: PathLike | None = None, *, reporter: Reporter | None = None
) -> DemoResult:
    """Run the model lifecycle on a fresh sample project (kept in ``keep`` when given)."""
    from loopline.lifecycle import run_demo

    try:
        chosen = Tier(tier)
    except ValueError:
        names = ", ".join(t.value for t in Tier)
        raise UsageError(f"tier '{tier}' does not exist; use one of {names}") from None
    # The demo keeps everything on this machine by design, GitHub-hosted runner or not (instance.py).
    previous = os.environ.get("LOOPLINE_LOCAL_RUN")
    os.environ["LOOPLINE_LOCAL_RUN"] = "true"
    try:
        return run_demo(chosen, Path(keep) if keep is not None else None, reporter)
    finally:
        if previous is None:
            del os.environ["LOOPLINE_LOCAL_RUN"]
        else:
            os.environ["LOOPLINE_LOCAL_RUN"] = previous

"""The registries of test and prod through the control plane: ``/mlflow/prod`` (and ``/mlflow/test`` in the
full tier) is a registry URI for what the workflows released there.

An application team loads the model prod serves with stock MLflow and a loopline token, with no
credential for prod's stores: ``MLFLOW_TRACKING_URI=<control plane>/mlflow/prod``,
``MLFLOW_TRACKING_TOKEN=<token>``, ``mlflow.pyfunc.load_model("models:/churn@production")``. A reader of
that workspace reads its registry (MLflow's own server for it answers, started on the first call, on
127.0.0.1) and its versions' files (``registry_files``); nothing else of the workspace is served, and its
registry is read-only here: a version enters it through the workflows, which move ``production``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopline import access
from loopline.control.mlflow_routes import LISTING, READ, REGISTRY, REGISTRY_READS, classify
from loopline.control.registry_files import RegistryFiles, VersionFiles, served_location
from loopline.control.tracking_backend import Backend
from loopline.errors import NotFound, Refused, TooLarge, UsageError
from loopline.instance import Instance
from loopline.net import read_body

__all__ = ["RELEASED", "Released"]

RELEASED = ("test", "prod")
"""The workspaces whose registry a reader of theirs reads through the control plane."""
_MAX_BODY = 1 << 20
"""Largest body of a registry read (a POST of get-latest-versions names a model and its stages)."""


class Released:
    """``/mlflow/{test,prod}/{path}``: reads of the workspace's registry and of its versions' files, for a
    reader of it signed in with a token (``principal``)."""

    def __init__(self, root: Path, principal: Any) -> None:
        self.root = root
        self.principal = principal
        self.backends = {workspace: Backend(root, workspace) for workspace in RELEASED}
        self.files = VersionFiles(root)

    async def stop(self) -> None:
        """End the MLflow servers started for these registries."""
        for backend in self.backends.values():
            await backend.stop()

    def _admit(self, request: Request, workspace: str) -> tuple[Any, str, RegistryFiles]:
        """The workspace's store, its artifact root and its versions' files, once the caller is known to
        be a reader of it (a refusal audited)."""
        from loopline.operations import Operation, authorize
        from loopline.rules import read_workspace

        instance = Instance.open(self.root)
        served = [w for w in RELEASED if w in instance.settings.workspaces]
        if workspace not in served:
            raise NotFound(
                f"no tracking URI /mlflow/{workspace[:40]} here: dev's is /mlflow/dev"
                + "".join(f", {w}'s registry /mlflow/{w}" for w in served)
            )
        principal: access.Principal = self.principal(request)
        request.state.user = principal.user
        authorize(instance, Operation("mlflow_registry", authorize, read_workspace(workspace)), {}, principal)
        location, artifacts = served_location(instance, workspace, "read its registry there")
        return location, artifacts, self.files.of(workspace, location)

    async def __call__(self, request: Request, workspace: str, path: str) -> Response:
        """A read of the registry, or of a version's file, answered; anything else refused."""
        location, artifacts, files = await run_in_threadpool(self._admit, request, workspace)
        if request.method == "GET" and path.startswith(LISTING):
            inside = request.query_params.get("path", "") if path == LISTING else path[len(LISTING) + 1 :]
            if (version := RegistryFiles.named(inside)) is not None:
                return await files.answer(*version, listing=path == LISTING)
        kind, _named = classify(request.method, path)
        if kind == REGISTRY:
            raise Refused(
                f"{workspace}'s registry is read-only here: a version enters it through the workflows"
            )
        if kind != READ or not REGISTRY_READS.fullmatch(path):
            raise UsageError(
                f"{request.method} /{path[:120]} is not served for {workspace}: its registry's reads and its "
                "versions' files are; runs are logged to dev (/mlflow/dev)"
            )
        body = await read_body(request, _MAX_BODY, TooLarge("a registry read's body is over 1 MB"))
        backend = self.backends[workspace]
        answer = await backend.client().request(
            request.method,
            f"{await backend.url(location, artifacts)}/{path}",
            params=request.query_params,
            content=body or None,
            headers={"content-type": "application/json"} if body else {},
        )
        # the first answer asks the model store how it names its files: off the event loop
        content = (
            files.served(answer.content)
            if files.known
            else await run_in_threadpool(files.served, answer.content)
        )
        return Response(
            content, answer.status_code, media_type=answer.headers.get("content-type", "application/json")
        )

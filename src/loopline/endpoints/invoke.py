"""Calling a served endpoint with loopline's own key (for smoke tests, validation and `endpoint invoke`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from loopline.endpoints import keys as keymod
from loopline.endpoints import service
from loopline.errors import StoreUnavailable, UsageError
from loopline.instance import Instance

__all__ = ["InvokeResult", "invoke"]


@dataclass(frozen=True)
class InvokeResult:
    """One answer of an endpoint."""

    status: int
    deployment: str | None
    model_version: str | None
    git_commit: str | None
    body: Any
    seconds: float

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "status": self.status,
            "deployment": self.deployment,
            "model_version": self.model_version,
            "git_commit": self.git_commit,
            "body": self.body,
            "seconds": round(self.seconds, 4),
        }


def invoke(
    instance: Instance,
    name: str,
    payload: dict[str, Any] | bytes,
    *,
    deployment: str | None = None,
    route: str = "invocations",
    content_type: str = "application/json",
    timeout: float = 30,
) -> InvokeResult:
    """POST ``payload`` to ``/endpoints/NAME/ROUTE`` of the server that serves the endpoint's workspace."""
    import httpx

    if route not in {"invocations", "score"}:
        raise UsageError(f"route '{route}' is not one of invocations, score")
    endpoint = service.get_endpoint(instance, name)
    key = keymod.system_key(service.system_secret(instance), name)
    headers = {"authorization": f"Bearer {key}", "content-type": content_type}
    if deployment:
        headers["loopline-deployment"] = deployment
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        response = httpx.post(f"{endpoint.url}/{route}", content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise StoreUnavailable(
            what=f"the server of endpoint '{name}'",
            where=endpoint.url,
            reason=f"{type(exc).__name__}; is `loopline serve --workspace {endpoint.workspace}` running?",
        ) from None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:1000]
    return InvokeResult(
        status=response.status_code,
        deployment=response.headers.get("loopline-deployment"),
        model_version=response.headers.get("loopline-model-version"),
        git_commit=response.headers.get("loopline-git-commit"),
        body=answer,
        seconds=response.elapsed.total_seconds(),
    )

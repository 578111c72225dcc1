"""The SDK: online endpoints, deployments, traffic, keys and invocations."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from loopline.api._common import PathLike, provisioned
from loopline.api.results import EndpointKeys, NewEndpoint
from loopline.domain import EndpointInfo
from loopline.instance import Instance

if TYPE_CHECKING:
    from loopline.endpoints.client import InvokeResult
    from loopline.loops.retire import Retired


def create_endpoint(
    name: str,
    workspace: str = "dev",
    *,
    auth: str = "key",
    sensitive: bool = False,
    strict: bool = False,
    project: PathLike | None = None,
) -> NewEndpoint:
    """Create an online endpoint in a workspace; with key auth, return its two keys."""
    from loopline.endpoints import service

    info, keys = service.create_endpoint(
        Instance.open(project), name, workspace, auth, sensitive=sensitive, strict=strict
    )
    return NewEndpoint(info, keys)


def update_endpoint(
    name: str,
    *,
    workspace: str | None = None,
    strict: bool | None = None,
    sensitive: bool | None = None,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Change an endpoint's settings: ``strict`` request checks, ``sensitive`` (no monitoring samples)."""
    from loopline.endpoints import service

    return service.update_endpoint(provisioned(project), name, workspace, strict=strict, sensitive=sensitive)


def list_endpoints(
    workspace: str | None = None, *, located: bool = False, project: PathLike | None = None
) -> list[EndpointInfo]:
    """Every online endpoint (of one workspace when given); with ``located``, each ``url`` where its
    workspace's server answers now (see :func:`get_endpoint`), each workspace asked once."""
    from loopline.endpoints import client, service

    instance = provisioned(project)
    found = service.list_endpoints(instance, workspace)
    if not located:
        return found
    bases = {w: client.server_url(instance, w) for w in sorted({info.workspace for info in found})}
    return [info.at(bases[info.workspace]) for info in found]


def get_endpoint(
    name: str,
    *,
    workspace: str | None = None,
    serving: bool = False,
    located: bool = False,
    project: PathLike | None = None,
) -> EndpointInfo:
    """One endpoint with its deployments, traffic and mirror (``workspace`` where the name is in several);
    with ``serving``, what answers each deployment in the serving processes that loaded it (a compiled
    form or the model's own predict, and why); with ``located``, its ``url`` where its workspace's server
    answers now (the workspace's ``endpoints_url``, or where a ``loopline serve --port`` of this machine
    listens), as ``endpoint invoke`` calls it."""
    from loopline.endpoints import client, service

    instance = provisioned(project)
    info = service.get_endpoint(instance, name, workspace, serving=serving)
    if not located:
        return info
    return info.at(client.server_url(instance, info.workspace))


def delete_endpoint(
    name: str, *, workspace: str | None = None, force: bool = False, project: PathLike | None = None
) -> EndpointInfo:
    """Delete an endpoint (with its deployments only when ``force``)."""
    from loopline.endpoints import service

    return service.delete_endpoint(provisioned(project), name, workspace, force=force)


def retire_endpoint(
    name: str, *, reason: str, workspace: str | None = None, project: PathLike | None = None
) -> Retired:
    """Retire an endpoint with evidence: its final report (deployments, a day's traffic and errors,
    releases, the newest monitoring check, key slots) archived in the shared registry, then its
    deployments, keys and itself removed, in one audit event naming the report."""
    from loopline.loops.retire import retire_endpoint as retire

    return retire(provisioned(project), name, workspace, reason)


def endpoint_keys(
    name: str,
    *,
    workspace: str | None = None,
    regenerate: str | None = None,
    project: PathLike | None = None,
) -> EndpointKeys:
    """List an endpoint's keys (by prefix); with ``regenerate``, replace that one and return it."""
    from loopline.endpoints import service

    instance = provisioned(project)
    fresh = {regenerate: service.regenerate_key(instance, name, regenerate, workspace)} if regenerate else {}
    listing = [k.to_dict() for k in service.key_listing(instance, name, workspace)]
    return EndpointKeys(name, listing, fresh)


def set_traffic(
    name: str,
    traffic: dict[str, int] | list[str] | None,
    *,
    workspace: str | None = None,
    mirror: dict[str, int] | list[str] | None = None,
    reason: str | None = None,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Set an endpoint's traffic split (``{"blue": 90, "green": 10}`` or ``["blue=90", "green=10"]``; None
    keeps the split, to change only the ``mirror``). A split set by hand ends the endpoint's release in
    progress, which would otherwise move the traffic again at its next canary step."""
    from loopline.endpoints import service
    from loopline.endpoints.releases import abandon_pending
    from loopline.endpoints.traffic import parse_assignments

    shares = parse_assignments(traffic) if isinstance(traffic, list) else traffic
    if isinstance(mirror, list):
        mirror = {} if mirror in (["none"], []) else parse_assignments(mirror, "mirror")
    instance = provisioned(project)
    within = service.get_endpoint(instance, name, workspace).workspace
    return service.set_traffic(
        instance,
        name,
        shares,
        mirror,
        reason=reason,
        workspace=within,
        also=None
        if shares is None
        else lambda connection: abandon_pending(
            connection, within, name, instance.actor, "split set by hand"
        ),
    )


def create_deployment(
    endpoint: str,
    name: str,
    *,
    workspace: str | None = None,
    model: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    traffic: int | None = None,
    check: bool = True,
    latest: bool = False,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Deploy a registered model version (by ``version`` or ``commit``, or with ``latest`` the newest in the
    endpoint's workspace, as an Azure ML file's ``azureml:NAME@latest``) to an endpoint."""
    from loopline.endpoints import service
    from loopline.sandbox import check_model

    instance = provisioned(project)
    chosen = instance.model_name(model)
    return service.create_deployment(
        instance,
        endpoint,
        name,
        chosen,
        version=version,
        commit=commit,
        traffic=traffic,
        check=functools.partial(check_model, allowed=instance.settings.config.sandbox) if check else None,
        workspace=workspace,
        latest=latest,
    )


def delete_deployment(
    endpoint: str, name: str, *, workspace: str | None = None, project: PathLike | None = None
) -> EndpointInfo:
    """Remove a deployment that takes no traffic."""
    from loopline.endpoints import service

    return service.delete_deployment(provisioned(project), endpoint, name, workspace)


def invoke_endpoint(
    name: str,
    payload: dict[str, Any] | bytes,
    *,
    workspace: str | None = None,
    deployment: str | None = None,
    route: str = "invocations",
    content_type: str = "application/json",
    timeout: float = 30,
    wait: float = 0,
    project: PathLike | None = None,
) -> InvokeResult:
    """Send one scoring request to a served endpoint with loopline's own key; return the answer (``wait``:
    seconds to give a server that is still starting)."""
    from loopline.endpoints.client import invoke

    return invoke(
        provisioned(project),
        name,
        payload,
        deployment=deployment,
        route=route,
        content_type=content_type,
        timeout=timeout,
        workspace=workspace,
        wait=wait,
    )

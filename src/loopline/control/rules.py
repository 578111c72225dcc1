"""Which role on which workspace each control-plane operation needs.

``reader`` reads everything of a workspace; ``developer`` runs the inner loop and changes dev's endpoints;
``releaser`` promotes into test and prod, rolls back and moves traffic outside dev; ``admin`` on every
workspace (``*``) manages users, roles, tokens and the tier. Every SDK function the control plane serves
has exactly one rule here; the server refuses to start otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopline.access import ALL_WORKSPACES, Role
from loopline.errors import LooplineError
from loopline.instance import Instance

__all__ = ["RULES", "Need"]

Need = tuple[Role, str]
Rule = Callable[[Instance, dict[str, Any]], Need]

DEV, TEST, PROD = "dev", "test", "prod"


def _fixed(role: Role, workspace: str) -> Rule:
    return lambda _instance, _args: (role, workspace)


def _changes(workspace: str) -> Need:
    """Changing a workspace's endpoints: a developer in dev, a releaser anywhere else."""
    return (Role.DEVELOPER if workspace == DEV else Role.RELEASER, workspace)


def _endpoint_workspace(instance: Instance, name: str | None, workspace: str | None = None) -> str:
    from loopline.endpoints import service

    try:
        where = workspace or (None if name else PROD)
        return service.get_endpoint(instance, name or instance.settings.prod_endpoint, where).workspace
    except LooplineError:
        # An endpoint that does not exist: ask for the most a change anywhere could need, so that the
        # answer (403 or 404) tells nothing about which endpoints exist to those who may not change them.
        return PROD


def _batch_workspace(instance: Instance, name: str, workspace: str | None = None) -> str:
    from loopline.batch import service

    try:
        return service.get_batch_endpoint(instance, name, workspace).workspace
    except LooplineError:
        return PROD


def _job_workspace(instance: Instance, job_id: str) -> str:
    from loopline.batch import jobs

    try:
        return jobs.get_job(instance, job_id).workspace
    except LooplineError:
        return PROD


def _read_endpoint(key: str) -> Rule:
    """Reading the endpoint named by argument ``key`` (default: the prod endpoint)."""
    return lambda instance, args: (
        Role.READER,
        _endpoint_workspace(instance, args.get(key), args.get("workspace")),
    )


def _change_endpoint(key: str) -> Rule:
    """Changing the endpoint named by argument ``key``."""
    return lambda instance, args: _changes(
        _endpoint_workspace(instance, args.get(key), args.get("workspace"))
    )


def _endpoint_keys(instance: Instance, args: dict[str, Any]) -> Need:
    workspace = _endpoint_workspace(instance, args["name"], args.get("workspace"))
    return _changes(workspace) if args.get("regenerate") else (Role.READER, workspace)


def _release(instance: Instance, args: dict[str, Any]) -> Need:
    # Releasing past a failed or missing validation is an admin's decision, and is audited as such.
    return (Role.ADMIN if args.get("override_reason") else Role.RELEASER, PROD)


def _policy(instance: Instance, args: dict[str, Any]) -> Need:
    workspace = _endpoint_workspace(instance, args.get("endpoint"), args.get("workspace"))
    return _changes(workspace) if args.get("act") else (Role.READER, workspace)


def _create_in(instance: Instance, args: dict[str, Any]) -> Need:
    return _changes(str(args.get("workspace", DEV)))


def _batch_change(instance: Instance, args: dict[str, Any]) -> Need:
    return _changes(_batch_workspace(instance, args["endpoint"], args.get("workspace")))


def _batch_resume(instance: Instance, args: dict[str, Any]) -> Need:
    return _changes(_job_workspace(instance, args["job_id"]))


ADMIN = _fixed(Role.ADMIN, ALL_WORKSPACES)
READ_ANY = _fixed(Role.READER, DEV)

RULES: dict[str, Rule] = {
    # Reading: a reader of dev sees the instance; reading an endpoint needs its workspace.
    "status": READ_ANY,
    "history": READ_ANY,
    "audit_verify": READ_ANY,
    "validation_report": READ_ANY,
    "workflow_enabled": READ_ANY,
    "workflow_list": READ_ANY,
    "list_endpoints": READ_ANY,
    "list_data": READ_ANY,
    "get_data": READ_ANY,
    "list_batch_endpoints": READ_ANY,
    "batch_jobs": READ_ANY,
    "batch_job": READ_ANY,
    "get_endpoint": _read_endpoint("name"),
    "releases": _read_endpoint("endpoint"),
    "invoke_endpoint": _read_endpoint("name"),
    "monitor_check": _read_endpoint("endpoint"),
    "latest_check": _read_endpoint("endpoint"),
    "endpoint_metrics": _read_endpoint("name"),
    "get_batch_endpoint": lambda instance, args: (
        Role.READER,
        _batch_workspace(instance, args["name"], args.get("workspace")),
    ),
    # The inner loop and data: developers.
    "inner_loop": _fixed(Role.DEVELOPER, DEV),
    "register_data": _fixed(Role.DEVELOPER, DEV),
    # Endpoints: developers in dev, releasers elsewhere.
    "create_endpoint": _create_in,
    "delete_endpoint": _change_endpoint("name"),
    "update_endpoint": _change_endpoint("name"),
    "endpoint_keys": _endpoint_keys,
    "set_traffic": _change_endpoint("name"),
    "create_deployment": _change_endpoint("endpoint"),
    "delete_deployment": _change_endpoint("endpoint"),
    "create_batch_endpoint": _create_in,
    "create_batch_deployment": _batch_change,
    "batch_invoke": _batch_change,
    "batch_resume": _batch_resume,
    "batch_promote": _batch_change,
    "batch_rollback": _batch_change,
    "policy_evaluate": _policy,
    # Promotion and rollback: releasers of the target workspace.
    "outer_loop_test": _fixed(Role.RELEASER, TEST),
    "outer_loop_prod": _release,
    "rollback": _change_endpoint("endpoint"),
    # Administration: admins of every workspace.
    "up": ADMIN,
    "set_tier": ADMIN,
    "user_add": ADMIN,
    "user_list": ADMIN,
    "user_grant": ADMIN,
    "token_create": ADMIN,
    "token_list": ADMIN,
    "token_revoke": ADMIN,
}

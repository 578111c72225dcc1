"""Which role on which workspace an operation needs: the rules the operation table (operations.py) uses.

``reader`` reads everything of a workspace; ``developer`` runs the inner loop and changes dev's endpoints;
``releaser`` promotes into test and prod, rolls back and moves traffic outside dev; ``admin`` on every
workspace (``*``) manages users, roles, tokens and the tier. A rule is a function of the instance and the
call's arguments that answers (role, workspace).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopline.access import ALL_WORKSPACES, Role
from loopline.errors import LooplineError
from loopline.instance import Instance

__all__ = [
    "ADMIN",
    "CHANGE_BATCH",
    "CREATE_IN",
    "DEVELOP",
    "ENDPOINT_KEYS",
    "POLICY",
    "READ_ANY",
    "READ_JOB",
    "READ_TEST",
    "RELEASE",
    "RESUME_BATCH",
    "VALIDATE",
    "Need",
    "Rule",
    "change_endpoint",
    "read_batch",
    "read_endpoint",
    "read_workspace",
]

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
        return _unknown(instance, workspace)


def _unknown(instance: Instance, workspace: str | None) -> str:
    """The workspace a rule asks about for an endpoint that does not exist: the one the call names, when
    it is one of the tier's (whoever may read it may list its endpoints, so the 404 tells them nothing
    new), else prod: the most a change anywhere could need, so that the answer (403 or 404) tells nothing
    about which endpoints exist to those who may not change them."""
    return workspace if workspace in instance.settings.workspaces else PROD


def _batch_workspace(instance: Instance, name: str, workspace: str | None = None) -> str:
    from loopline.batch import service

    try:
        return service.get_batch_endpoint(instance, name, workspace).workspace
    except LooplineError:
        return _unknown(instance, workspace)


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


def _read_job(instance: Instance, args: dict[str, Any]) -> Need:
    # A job that does not exist is guarded as prod's are, so a refusal tells nothing about which exist.
    return (Role.READER, _job_workspace(instance, args["job_id"]))


ADMIN = _fixed(Role.ADMIN, ALL_WORKSPACES)
READ_ANY = _fixed(Role.READER, DEV)
"""A reader of dev sees the instance."""
DEVELOP = _fixed(Role.DEVELOPER, DEV)
"""The inner loop and data: developers."""
VALIDATE = _fixed(Role.RELEASER, TEST)
READ_PROD = _fixed(Role.READER, PROD)
READ_TEST = _fixed(Role.READER, TEST)
"""What the test workspace found: its readers, as its events in the history are."""
RELEASE = _release
CREATE_IN = _create_in
CHANGE_BATCH = _batch_change
RESUME_BATCH = _batch_resume
READ_JOB = _read_job
"""Reading one batch job: a reader of its workspace."""
ENDPOINT_KEYS = _endpoint_keys
POLICY = _policy


def read_endpoint(key: str) -> Rule:
    """Reading the endpoint named by argument ``key`` (default: the prod endpoint)."""
    return _read_endpoint(key)


def change_endpoint(key: str) -> Rule:
    """Changing the endpoint named by argument ``key``: a developer in dev, a releaser elsewhere."""
    return _change_endpoint(key)


def read_workspace(workspace: str) -> Rule:
    """Reading what a workspace holds (its registry, through the control plane's tracking URI)."""
    return _fixed(Role.READER, workspace)


def read_batch(key: str) -> Rule:
    """Reading the batch endpoint named by argument ``key``."""
    return lambda instance, args: (
        Role.READER,
        _batch_workspace(instance, args[key], args.get("workspace")),
    )

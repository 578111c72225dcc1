"""The operation table: every SDK operation once, with its function, its access rule, whether the control
plane serves it, and its wire name.

The client (``remote/client.py``), the control plane's routes (``control/app.py``), its OpenAPI document,
the dashboard and the check of who may do what all read this table. The wire name is written out, so
renaming a Python function never changes the API. Adding an operation: write the function in ``api/``,
then one row below (see docs/development.md, "Adding an operation").

Who is calling is a context (:func:`acting`): the control plane and the dashboard set it for a signed-in
user, and :func:`invoke` checks the operation's rule for that caller before the function runs, then
filters what a listing returns by the same rules. Locally there is no caller to check: the person at the
machine holds the stores' credentials anyway.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from loopline.access import ALL_WORKSPACES, Principal, Role
from loopline.domain import SHARED
from loopline.errors import Forbidden, InvalidReference, UsageError
from loopline.git import hex_digits
from loopline.instance import Instance, acting_as
from loopline.rules import Rule

__all__ = [
    "Operation",
    "acting",
    "authorize",
    "call",
    "invoke",
    "operation",
    "operations",
    "readable",
    "refuse_nul",
]

View = Callable[[Principal, Any], Any]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Operation:
    """One SDK operation."""

    name: str
    """Its wire name: ``POST /v1/<name>``."""
    function: Callable[..., Any]
    rule: Rule
    remote: bool = True
    """Served by the control plane; a local-only operation runs in the caller's process."""
    local: frozenset[str] = field(default=frozenset())
    """Arguments that stay in the caller's process (besides ``project`` and ``reporter``)."""
    composed: bool = False
    """Local, yet with a control plane the caller runs it around the operations it needs there (it writes
    the caller's files from the control plane's data): no route of its own."""
    caller_head: bool = False
    """Without a commit, the caller's HEAD is meant (not the control plane's checkout's)."""
    view: View | None = None
    """What of the result a caller may see (listings keep what the same rules let them read)."""

    @property
    def label(self) -> str:
        """The operation as refusals name it."""
        return self.name.replace("_", " ")


_CALLER: ContextVar[Principal | None] = ContextVar("loopline_caller", default=None)


@contextmanager
def acting(principal: Principal) -> Iterator[None]:
    """Run what follows as ``principal``: operations are checked for their role, recorded as theirs."""
    token = _CALLER.set(principal)
    try:
        with acting_as(principal.user):
            yield
    finally:
        _CALLER.reset(token)


def readable(principal: Principal, workspace: str | None) -> bool:
    """Whether the caller may read what belongs to ``workspace`` (the shared registry and the instance's
    own records go with reading dev)."""
    where = "dev" if workspace in (None, SHARED) else workspace
    held = principal.role_on(where)
    return held is not None and held >= Role.READER


def authorize(instance: Instance, op: Operation, arguments: dict[str, Any], principal: Principal) -> None:
    """Refuse, and audit the refusal, unless ``principal`` holds the role ``op`` needs for ``arguments``."""
    from loopline import audit
    from loopline.events import RefusedAttempt

    role, workspace = op.rule(instance, arguments)
    try:
        principal.require(role, workspace, op.label)
    except Forbidden as refused:
        audit.record(
            instance.db,
            RefusedAttempt(
                actor=principal.user,
                workspace=None if workspace == ALL_WORKSPACES else workspace,
                reason=refused.message,
                outcome="forbidden",
                details={"operation": op.name, "role_needed": role.label, "scope": workspace},
            ),
        )
        raise


def invoke(op: Operation, arguments: dict[str, Any], project: str | Path | None = None) -> Any:
    """Run ``op`` with ``arguments``: checked for the current caller (if any), its result filtered."""
    refuse_nul(arguments)
    principal = _CALLER.get()
    if principal is not None:
        authorize(Instance.open(project), op, arguments, principal)
        _sha_only(arguments.get("commit"))
    result = op.function(**arguments, project=project)
    if principal is not None and op.view is not None:
        return op.view(principal, result)
    return result


_DATA = frozenset({"payload"})
"""Arguments that are data for a model, looked into by no one but the model."""


def refuse_nul(arguments: dict[str, Any]) -> None:
    """Refuse a NUL character in a name, a reason or a path, or anywhere in a list or mapping of them (a
    run's params and tags, its record): no store keeps one (PostgreSQL refuses it in any text, git and
    the file system in any argument), and none of them holds one that a person typed."""
    for name, value in arguments.items():
        if name not in _DATA and _holds_nul(value):
            raise UsageError(
                f"{name} holds a NUL character (\\0), which loopline keeps in no store; remove it"
            )


def _holds_nul(value: Any) -> bool:
    """Whether ``value``, or a text anywhere within it, holds a NUL (looked through without recursion: a
    caller's JSON may nest as deep as its parser allows)."""
    waiting = [value]
    while waiting:
        each = waiting.pop()
        if isinstance(each, str) and "\0" in each:
            return True
        if isinstance(each, dict):
            waiting.extend(each)
            waiting.extend(each.values())
        elif isinstance(each, list | tuple):
            waiting.extend(each)
    return False


def _sha_only(commit: Any) -> None:
    """Refuse a caller's commit named by a git ref: that names a commit of the caller's repository, whose
    history the control plane's checkout need not share (loopline's client sends the SHA it names)."""
    if isinstance(commit, str) and not hex_digits(commit):
        raise InvalidReference(
            f"'{commit.strip()[:60]}' is not a commit SHA: name the commit by its SHA (or a prefix of 7+); "
            "loopline's own client sends the SHA a git ref names in your repository"
        )


def call(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run an SDK function as the current caller (see :func:`acting`): checked and filtered by its row's
    rules; a plain call where there is no caller."""
    arguments = dict(inspect.signature(function).bind(*args, **kwargs).arguments)
    if _CALLER.get() is None:
        refuse_nul(arguments)
        return function(*args, **kwargs)
    project = arguments.pop("project", None)
    return cast(R, invoke(operation(function), arguments, project))


def _of_workspace(principal: Principal, found: list[Any]) -> list[Any]:
    """What names its workspace (an endpoint, a job, a failed delivery by its event's), kept where the
    caller reads it."""
    return [item for item in found if readable(principal, item.workspace)]


def _status(principal: Principal, status: Any) -> Any:
    models = tuple(m for m in status.models if readable(principal, m.workspace))
    endpoints = tuple(e for e in status.endpoints if readable(principal, e.get("workspace")))
    batch = tuple(e for e in status.batch_endpoints if readable(principal, e.get("workspace")))
    held = principal.role_on(ALL_WORKSPACES)
    if held is not None and held >= Role.ADMIN:
        return replace(status, models=models, endpoints=endpoints, batch_endpoints=batch)
    # Where the instance lives on the server is an admin's to know: others see it as ".".
    root = str(status.root)

    def inside(location: str) -> str:
        return _hide_root(location, root)

    return replace(
        status,
        root=Path("."),
        models=tuple(replace(m, source_uri=inside(m.source_uri)) for m in models),
        endpoints=endpoints,
        batch_endpoints=batch,
        stores={
            name: {k: v and inside(v) for k, v in store.items()} for name, store in status.stores.items()
        },
        datastores={name: inside(url) for name, url in status.datastores.items()},
        state_url=inside(status.state_url),
    )


def _hide_root(location: str, root: str) -> str:
    """``location`` with the folder ``root`` (and only that folder, not a sibling whose name begins with
    it) written as "."."""
    return re.sub(re.escape(root.rstrip("/")) + r"(?=/|$)", ".", location)


def _history(principal: Principal, records: list[Any]) -> list[Any]:
    return [r for r in records if readable(principal, r.event.workspace)]


@cache
def operations() -> dict[str, Operation]:
    """Every operation by its wire name."""
    from loopline import api
    from loopline import rules as r

    table = (
        # Reading: a reader of dev sees the instance; reading an endpoint needs its workspace.
        Operation("status", api.status, r.READ_ANY, view=_status),
        Operation("history", api.history, r.READ_ANY, view=_history),
        # The ranking file is the server's (model.ranking), not the caller's choice of a path on the server.
        Operation("compare", api.compare, r.READ_ANY, local=frozenset({"ranking"})),
        Operation("sweeps", api.sweeps, r.READ_ANY),
        Operation("audit_verify", api.audit_verify, r.READ_ANY),
        Operation("audit_checkpoint", api.audit_checkpoint, r.DEVELOP),
        # A validation report is the test workspace's finding, as its gate event in the history is.
        Operation("validation_report", api.validation_report, r.READ_TEST, caller_head=True),
        Operation("workflow_enabled", api.workflow_enabled, r.READ_ANY),
        Operation("workflow_list", api.workflow_list, r.READ_ANY),
        Operation("list_endpoints", api.list_endpoints, r.READ_ANY, view=_of_workspace),
        Operation("list_data", api.list_data, r.READ_ANY),
        Operation("get_data", api.get_data, r.READ_ANY),
        Operation("list_batch_endpoints", api.list_batch_endpoints, r.READ_ANY, view=_of_workspace),
        Operation("batch_jobs", api.batch_jobs, r.READ_ANY, view=_of_workspace),
        Operation("batch_job", api.batch_job, r.READ_JOB),
        Operation("get_endpoint", api.get_endpoint, r.read_endpoint("name")),
        Operation("releases", api.releases, r.read_endpoint("endpoint")),
        Operation("invoke_endpoint", api.invoke_endpoint, r.read_endpoint("name")),
        Operation("monitor_check", api.monitor_check, r.read_endpoint("endpoint")),
        Operation("latest_check", api.latest_check, r.read_endpoint("endpoint")),
        Operation("endpoint_metrics", api.endpoint_metrics, r.read_endpoint("name")),
        Operation("get_batch_endpoint", api.get_batch_endpoint, r.read_batch("name")),
        # The inner loop and data: developers.
        # Where training runs is the caller's choice: the control plane only imports the run.
        Operation("inner_loop", api.inner_loop, r.DEVELOP, local=frozenset({"compute"})),
        # A sweep trains many times with the caller's checkout: it runs where the caller is, and with a
        # control plane uploads the best trial's run as the inner loop does.
        Operation("sweep", api.sweep, r.DEVELOP, remote=False, composed=True),
        Operation("register_data", api.register_data, r.DEVELOP),
        # The files are on the caller's machine: upload_data sends them to the control plane, which copies
        # them into the inbox (POST /v1/uploads, then /v1/upload_data); stage_data copies them with the
        # caller's own credentials, for register_data to pin wherever that runs.
        Operation("stage_data", api.stage_data, r.DEVELOP, remote=False),
        Operation("upload_data", api.upload_data, r.DEVELOP, local=frozenset({"source"})),
        # Endpoints: developers in dev, releasers elsewhere.
        Operation("create_endpoint", api.create_endpoint, r.CREATE_IN),
        Operation("update_endpoint", api.update_endpoint, r.change_endpoint("name")),
        Operation("delete_endpoint", api.delete_endpoint, r.change_endpoint("name")),
        Operation("retire_endpoint", api.retire_endpoint, r.change_endpoint("name")),
        Operation("endpoint_keys", api.endpoint_keys, r.ENDPOINT_KEYS),
        Operation("set_traffic", api.set_traffic, r.change_endpoint("name")),
        Operation("create_deployment", api.create_deployment, r.change_endpoint("endpoint")),
        Operation("delete_deployment", api.delete_deployment, r.change_endpoint("endpoint")),
        Operation("create_batch_endpoint", api.create_batch_endpoint, r.CREATE_IN),
        Operation("create_batch_deployment", api.create_batch_deployment, r.CHANGE_BATCH),
        Operation("batch_invoke", api.batch_invoke, r.CHANGE_BATCH),
        Operation("batch_resume", api.batch_resume, r.RESUME_BATCH),
        Operation("batch_promote", api.batch_promote, r.CHANGE_BATCH),
        Operation("batch_rollback", api.batch_rollback, r.CHANGE_BATCH),
        # A policy file is the server's configuration, not the caller's choice of a path on the server.
        Operation("policy_evaluate", api.policy_evaluate, r.POLICY, local=frozenset({"policy"})),
        # Promotion and rollback: releasers of the target workspace.
        Operation("outer_loop_test", api.outer_loop_test, r.VALIDATE, caller_head=True),
        Operation("outer_loop_prod", api.outer_loop_prod, r.RELEASE, caller_head=True),
        # Who may approve is release.approvals' list (users, or roles on prod): checked by the service.
        Operation("approve", api.approve, r.READ_PROD, caller_head=True),
        # Where releases to prod stand is prod's to read.
        Operation("approvals", api.approvals, r.READ_PROD, caller_head=True),
        Operation("approval_requests", api.approval_requests, r.READ_PROD),
        Operation("rollback", api.rollback, r.change_endpoint("endpoint")),
        # Taking a version out of every release and putting it back: releasers of prod.
        Operation("withdraw", api.withdraw, r.RELEASE, caller_head=True),
        Operation("reinstate", api.reinstate, r.RELEASE, caller_head=True),
        Operation("withdrawals", api.withdrawals, r.READ_ANY),
        # Administration: admins of every workspace.
        Operation("up", api.up, r.ADMIN),
        Operation("set_tier", api.set_tier, r.ADMIN),
        Operation("user_add", api.user_add, r.ADMIN),
        Operation("user_list", api.user_list, r.ADMIN),
        Operation("user_grant", api.user_grant, r.ADMIN),
        Operation("token_create", api.token_create, r.ADMIN),
        Operation("token_list", api.token_list, r.ADMIN),
        Operation("token_revoke", api.token_revoke, r.ADMIN),
        Operation("list_locks", api.list_locks, r.READ_ANY),
        # Webhooks: what failed is the instance's record; sending again is an admin's call.
        Operation("notifications_failed", api.notifications_failed, r.READ_ANY, view=_of_workspace),
        Operation("notifications_retry", api.notifications_retry, r.ADMIN),
        Operation("notifications_deliver", api.notifications_deliver, r.ADMIN),
        Operation("unlock", api.unlock, r.ADMIN),
        # Only in the caller's process: they write the caller's files or use the caller's MLflow.
        Operation("init", api.init, r.ADMIN, remote=False),
        Operation("init_existing", api.init_existing, r.ADMIN, remote=False),
        # With a control plane: the store as this machine reaches it, without loopline's database.
        Operation("use_workspace", api.use_workspace, r.READ_ANY, remote=False, composed=True),
        Operation("workflow_run", api.workflow_run, r.DEVELOP, remote=False),
        Operation("workflow_update", api.workflow_update, r.DEVELOP, remote=False),
        Operation("migrate_state", api.migrate_state, r.ADMIN, remote=False),
        Operation("migrate_tracking", api.migrate_tracking, r.ADMIN, remote=False),
        Operation("migrate_models", api.migrate_models, r.ADMIN, remote=False),
        Operation("migrate_datastores", api.migrate_datastores, r.ADMIN, remote=False),
        Operation("import_inner_loop", api.import_inner_loop, r.DEVELOP, remote=False),
        # It writes files here and comments as this machine's GitHub Actions job, from experiment_data.
        Operation("report_experiment", api.report_experiment, r.READ_ANY, remote=False, composed=True),
        Operation("experiment_data", api.experiment_data, r.READ_ANY),
        # It renders the caller's configuration for the caller's cluster.
        Operation("k8s_render", api.k8s_render, r.READ_ANY, remote=False),
    )
    return {op.name: op for op in table}


def operation(function: Callable[..., Any]) -> Operation:
    """The row of an SDK function."""
    for op in operations().values():
        if op.function is function:
            return op
    raise KeyError(f"{getattr(function, '__name__', function)} is not an operation of the table")

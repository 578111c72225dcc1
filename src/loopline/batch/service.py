"""Batch endpoints and their deployments: a default deployment, switched with an optimistic check."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loopline import audit
from loopline.compute.targets import resolve
from loopline.domain import SHARED, DeploymentInfo, pinned, utcnow
from loopline.endpoints.deployments import (
    choose_version,
    deployment_info,
    owned_rows,
    record_deployment,
    with_environment,
)
from loopline.endpoints.rows import check_name, scoped_row
from loopline.errors import NotFound, Refused, UsageError
from loopline.events import BatchPromoted
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import batch_deployments, batch_endpoints

__all__ = [
    "BatchEndpoint",
    "check_output_file",
    "create_batch_deployment",
    "create_batch_endpoint",
    "get_batch_endpoint",
    "list_batch_endpoints",
    "promote",
    "rollback",
]


@dataclass(frozen=True)
class BatchEndpoint:
    """A batch endpoint, its deployments and which one scores by default."""

    name: str
    workspace: str
    default: str | None
    previous: str | None
    deployments: tuple[DeploymentInfo, ...]
    created_at: str

    def deployment(self, name: str | None) -> DeploymentInfo | None:
        """The deployment called ``name`` (the default when None)."""
        wanted = name or self.default
        return next((d for d in self.deployments if d.name == wanted), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "workspace": self.workspace,
            "default": self.default,
            "previous": self.previous,
            "deployments": [d.to_dict() for d in self.deployments],
            "created_at": self.created_at,
        }


def _row(connection: Connection, name: str, workspace: str | None = None, lock: bool = False) -> Any:
    return scoped_row(connection, batch_endpoints, "batch endpoint", name, workspace, lock=lock)


def _endpoint(connection: Connection, row: Any) -> BatchEndpoint:
    rows = owned_rows(connection, batch_deployments, row["id"], "id")
    deployments = tuple(
        deployment_info(r, 100 if r["name"] == row["default_deployment"] else 0) for r in rows
    )
    return BatchEndpoint(
        row["name"],
        row["workspace"],
        row["default_deployment"],
        row["previous_default"],
        deployments,
        as_utc(row["created_at"]).isoformat(timespec="seconds"),
    )


def create_batch_endpoint(instance: Instance, name: str, workspace: str) -> BatchEndpoint:
    """Create a batch endpoint in a workspace."""
    check_name("batch endpoint", name)
    if workspace == SHARED:
        raise UsageError("the shared registry runs no batch endpoints; create it in a workspace")
    instance.require_workspace(workspace)
    instance.db.require_current(instance.root)
    with instance.db.write() as connection:
        taken = select(batch_endpoints.c.id).where(
            batch_endpoints.c.name == name, batch_endpoints.c.workspace == workspace
        )
        if connection.execute(taken).first():
            raise Refused(f"{workspace} already has a batch endpoint named '{name}'")
        connection.execute(
            insert(batch_endpoints).values(
                name=name, workspace=workspace, created_at=utcnow(), created_by=instance.actor
            )
        )
        return _endpoint(connection, _row(connection, name, workspace))


def list_batch_endpoints(instance: Instance) -> list[BatchEndpoint]:
    """Every batch endpoint, by name."""
    with instance.db.read() as connection:
        rows = connection.execute(select(batch_endpoints).order_by(batch_endpoints.c.name)).mappings().all()
        return [_endpoint(connection, row) for row in rows]


def get_batch_endpoint(instance: Instance, name: str, workspace: str | None = None) -> BatchEndpoint:
    """One batch endpoint (``workspace`` where the name is in several)."""
    if workspace:
        instance.require_workspace(workspace)
    with instance.db.read() as connection:
        return _endpoint(connection, _row(connection, name, workspace))


def create_batch_deployment(
    instance: Instance,
    endpoint: str,
    name: str,
    model: str,
    *,
    version: int | None = None,
    commit: str | None = None,
    workspace: str | None = None,
    compute: str | None = None,
    latest: bool = False,
    output_file: str | None = None,
) -> BatchEndpoint:
    """Deploy a model version of the endpoint's workspace (by ``version`` or ``commit``, or with ``latest``
    the newest there); the first deployment becomes the default. ``compute`` names the target its jobs run
    on (default ``compute.default``); ``output_file``, a CSV file each job also writes its predictions
    to, whole, beside the parts."""
    check_name("deployment", name)
    if output_file is not None:
        check_output_file(output_file)
    if compute is not None:
        resolve(instance.settings.config.compute, compute)  # refused now if loopline.yaml has no such target
    current = get_batch_endpoint(instance, endpoint, workspace)
    chosen, environment = choose_version(
        instance, current.workspace, model, version=version, commit=commit, latest=latest
    )
    with instance.db.write() as connection:
        row = _row(connection, endpoint, current.workspace, lock=True)
        if any(d.name == name for d in _endpoint(connection, row).deployments):
            raise Refused(f"batch endpoint '{endpoint}' already has a deployment named '{name}'")
        where = (row["id"], current.workspace, f"batch:{endpoint}")
        details = {
            "batch": True,
            **({"compute": compute} if compute else {}),
            **({"output_file": output_file} if output_file else {}),
        }
        record_deployment(
            connection,
            batch_deployments,
            where,
            name,
            chosen,
            instance.actor,
            details,
            environment,
            compute=compute,
            output_file=output_file,
        )
        if row["default_deployment"] is None:
            connection.execute(
                update(batch_endpoints)
                .where(batch_endpoints.c.id == row["id"])
                .values(default_deployment=name)
            )
        created = _endpoint(connection, _row(connection, endpoint, current.workspace))
        return replace(created, deployments=with_environment(created.deployments, name, environment))


_OUTPUT_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.csv")


def check_output_file(name: str) -> None:
    """Refuse an output file name that is not a plain ``.csv`` file name of a job's folder, or that could
    be taken for one of its parts or its lineage."""
    if not _OUTPUT_FILE.fullmatch(name) or name.startswith("part-"):
        raise UsageError(
            f"output file '{name[:80]}' is not a CSV file name a job's folder can hold: give a name such as "
            "predictions.csv (letters, digits, '.', '_', '-', ending in .csv, not starting with part-)"
        )


@dataclass(frozen=True)
class DefaultChange:
    """What a promotion or rollback of a batch endpoint's default did."""

    endpoint: str
    default: str | None
    previous: str | None
    changed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def promote(
    instance: Instance,
    endpoint: str,
    deployment: str,
    expected_current: str | None = None,
    workspace: str | None = None,
    reason: str | None = None,
    *,
    details: dict[str, Any] | None = None,
) -> DefaultChange:
    """Make ``deployment`` the default; refuse when the current default is not ``expected_current``.
    ``reason`` (and ``details``) go into the audit log."""
    with instance.db.write() as connection:
        row = _row(connection, endpoint, workspace, lock=True)
        info = _endpoint(connection, row)
        if info.deployment(deployment) is None:
            raise NotFound(f"batch endpoint '{endpoint}' has no deployment named '{deployment}'")
        current = row["default_deployment"]
        if expected_current is not None and current != expected_current:
            raise Refused(
                f"the default of batch endpoint '{endpoint}' is {current or 'nothing'}, not "
                f"{expected_current} as expected; someone changed it (see `loopline history`), so "
                "nothing was changed"
            )
        if current == deployment:
            return DefaultChange(
                endpoint,
                current,
                row["previous_default"],
                False,
                f"{deployment} is already the default of {endpoint}; nothing to do",
            )
        connection.execute(
            update(batch_endpoints)
            .where(batch_endpoints.c.id == row["id"])
            .values(default_deployment=deployment, previous_default=current)
        )
        chosen = info.deployment(deployment)
        assert chosen is not None
        audit.append(
            connection,
            BatchPromoted(
                actor=instance.actor,
                workspace=info.workspace,
                **pinned(chosen),
                source=f"batch:{endpoint}/{current}",
                target=f"batch:{endpoint}/{deployment}",
                reason=reason,
                details=details or {},
            ),
        )
        after = _row(connection, endpoint, row["workspace"])
    if after["default_deployment"] != deployment:  # read back what was written
        raise Refused(
            f"the default of '{endpoint}' reads back as {after['default_deployment']}, not {deployment}"
        )
    return DefaultChange(
        endpoint, deployment, current, True, f"{endpoint} scores with {deployment} (was {current})"
    )


def rollback(instance: Instance, endpoint: str, workspace: str | None = None) -> DefaultChange:
    """Restore the default from before the last promotion (once: a second rollback does nothing)."""
    with instance.db.write() as connection:
        row = _row(connection, endpoint, workspace, lock=True)
        previous, current = row["previous_default"], row["default_deployment"]
        if previous is None:
            return DefaultChange(
                endpoint,
                current,
                None,
                False,
                f"{endpoint} has no earlier default to return to; nothing to do",
            )
        connection.execute(
            update(batch_endpoints)
            .where(batch_endpoints.c.id == row["id"])
            .values(default_deployment=previous, previous_default=None)
        )
        info = _endpoint(connection, row)
        chosen = info.deployment(previous)
        audit.append(
            connection,
            BatchPromoted(
                actor=instance.actor,
                workspace=info.workspace,
                model=chosen.model if chosen else None,
                version=chosen.version if chosen else None,
                git_commit=chosen.git_commit if chosen else None,
                source=f"batch:{endpoint}/{current}",
                target=f"batch:{endpoint}/{previous}",
                reason="rollback",
            ),
        )
    return DefaultChange(
        endpoint, previous, None, True, f"{endpoint} scores with {previous} again (was {current})"
    )

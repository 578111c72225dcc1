"""What online and batch deployments share: the version a deployment names (its files verified, its model
checked), the row that records it, the row read back, and the audit event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, insert, select, update

from loopline import audit, catalog
from loopline.domain import DeploymentInfo, ModelVersionInfo, pinned, utcnow
from loopline.errors import NotFound, Refused, UsageError
from loopline.events import Deployed
from loopline.instance import Instance
from loopline.model_environment import differences
from loopline.state import as_utc
from loopline.state.schema import batch_deployments, batch_endpoints, deployments, endpoints
from loopline.versions import commit_version
from loopline.withdrawn import refuse_withdrawn

__all__ = [
    "choose_version",
    "deployment_info",
    "owned_rows",
    "record_deployment",
    "repin",
    "resolve_model_version",
    "with_environment",
]


def owned_rows(connection: Connection, table: Table, endpoint_id: int, order: str) -> Sequence[RowMapping]:
    """The rows of ``table`` (deployments, keys) that belong to the endpoint ``endpoint_id``, by ``order``."""
    query = select(table).where(table.c.endpoint_id == endpoint_id).order_by(table.c[order])
    return connection.execute(query).mappings().all()


def resolve_model_version(
    instance: Instance,
    workspace: str,
    model: str,
    *,
    version: int | None = None,
    commit: str | None = None,
    latest: bool = False,
) -> ModelVersionInfo:
    """The version of ``model`` in ``workspace`` named by number, by commit (prefix of 7+; a commit without
    one of its own takes its ancestor's, by the ``training.paths`` rule of ``versions.py``), or ``latest``:
    the newest there, as Azure ML reads ``azureml:NAME@latest``."""
    if [version is not None, commit is not None, latest].count(True) != 1:
        raise UsageError("name the model version with exactly one of --version N, --commit SHA or --latest")
    if commit is not None:
        return commit_version(instance, model, commit, workspace=workspace)
    found = catalog.list_versions(instance.db, workspace=workspace, name=model)
    if latest and found:
        return refuse_withdrawn(instance.db, max(found, key=lambda v: v.version))
    if latest:
        raise NotFound(
            f"model '{model}' has no version in {workspace} yet, so none is its latest; "
            + catalog.how_versions_arrive(workspace)
        )
    matches = [v for v in found if v.version == version]
    if not matches:
        held = f"its newest there is {max(v.version for v in found)}" if found else "it has none there yet"
        raise NotFound(
            f"model '{model}' has no version {version} in {workspace} ({held}); "
            + catalog.how_versions_arrive(workspace)
        )
    return refuse_withdrawn(instance.db, matches[0])


def choose_version(
    instance: Instance,
    workspace: str,
    model: str,
    *,
    version: int | None,
    commit: str | None,
    check: Callable[[Path], object] | None = None,
    latest: bool = False,
) -> tuple[ModelVersionInfo, tuple[str, ...]]:
    """The version a new deployment names, its files verified against their digest and, with ``check``,
    the model loaded and answering (a refusal names the version); with the model's requirements that the
    packages installed here do not meet."""
    chosen = resolve_model_version(instance, workspace, model, version=version, commit=commit, latest=latest)
    folder = instance.model_store_holding(chosen).verify(chosen.content_digest)
    if check is not None:
        try:
            check(folder)
        except Refused as refused:
            raise type(refused)(f"{model} v{chosen.version}: {refused.message}") from None
    return chosen, tuple(map(str, differences(folder)))


def with_environment(
    deployments: tuple[DeploymentInfo, ...], name: str, environment: tuple[str, ...]
) -> tuple[DeploymentInfo, ...]:
    """``deployments`` with the one called ``name`` (just created) saying how its model's requirements
    differ from the packages where it was deployed."""
    return tuple(replace(d, environment=environment) if d.name == name else d for d in deployments)


def record_deployment(
    connection: Connection,
    table: Table,
    endpoint: tuple[int, str, str],
    name: str,
    chosen: ModelVersionInfo,
    actor: str,
    details: dict[str, Any],
    environment: tuple[str, ...] = (),
    **columns: Any,
) -> None:
    """Insert deployment ``name`` of ``chosen`` into ``table`` for ``endpoint`` (its id, workspace and the
    name events give it) and audit it, with the requirements of its model that the packages here do not
    meet, in the caller's transaction; ``columns`` are the table's own."""
    endpoint_id, workspace, target = endpoint
    connection.execute(
        insert(table).values(
            endpoint_id=endpoint_id,
            name=name,
            model_name=chosen.name,
            model_version=chosen.version,
            git_commit=chosen.git_commit,
            content_digest=chosen.content_digest,
            source_uri=chosen.source_uri,
            created_at=utcnow(),
            created_by=actor,
            **columns,
        )
    )
    audit.append(
        connection,
        Deployed(
            actor=actor,
            workspace=workspace,
            **pinned(chosen),
            target=f"{target}/{name}",
            details={
                "content_digest": chosen.content_digest,
                **details,
                **({"environment": list(environment)} if environment else {}),
            },
        ),
    )


def deployment_info(row: Any, traffic: int) -> DeploymentInfo:
    """A deployment row (online or batch) read back, with its share of traffic."""
    return DeploymentInfo(
        name=row["name"],
        model=row["model_name"],
        version=row["model_version"],
        git_commit=row["git_commit"],
        content_digest=row["content_digest"],
        source_uri=row["source_uri"],
        traffic=traffic,
        created_at=as_utc(row["created_at"]),
        created_by=row["created_by"],
        compute=row.get("compute"),
        output_file=row.get("output_file"),
    )


def repin(connection: Connection, version: ModelVersionInfo, was: int) -> None:
    """Point the online and batch deployments of ``version``'s workspace that pin its files as number ``was``
    at its number now (its files registered again in MLflow, under another number); the online endpoints'
    generation moves, so serving processes read them again."""
    for table, parent in ((deployments, endpoints), (batch_deployments, batch_endpoints)):
        pinning = (
            table.c.endpoint_id.in_(select(parent.c.id).where(parent.c.workspace == version.workspace)),
            table.c.model_name == version.name,
            table.c.model_version == was,
            table.c.content_digest == version.content_digest,
        )
        owners = {row[0] for row in connection.execute(select(table.c.endpoint_id).where(*pinning))}
        connection.execute(update(table).where(*pinning).values(model_version=version.version))
        if parent is endpoints and owners:
            connection.execute(
                update(endpoints)
                .where(endpoints.c.id.in_(owners))
                .values(generation=endpoints.c.generation + 1)
            )

"""Endpoints' rows read: by name within a workspace, as ``EndpointInfo``, and as a serving replica routes
them (the snapshot it follows by each endpoint's generation)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

from loopline.domain import EndpointInfo
from loopline.endpoints import keys as keymod
from loopline.endpoints.deployments import deployment_info, owned_rows
from loopline.errors import NotFound, UsageError, shorten
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import deployments, endpoint_keys, endpoints

__all__ = [
    "AUTH_MODES",
    "Routable",
    "check_name",
    "endpoint_info",
    "generations",
    "routing_snapshot",
    "scoped_row",
    "served_marks",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
AUTH_MODES = ("key", "none")


def check_name(kind: str, name: str) -> str:
    """Refuse names that would not work in a URL path."""
    if not _NAME.match(name):
        raise UsageError(
            f"{kind} name '{shorten(name, 67)}' must be lowercase letters, digits and "
            "'-', starting with a letter or digit (63 at most)"
        )
    return name


def endpoint_info(connection: Connection, row: Any, base_url: str) -> EndpointInfo:
    """The endpoint of ``row`` with its deployments, served under ``base_url``."""
    rows = owned_rows(connection, deployments, row["id"], "id")
    mirror = {row["mirror_deployment"]: row["mirror_percent"]} if row["mirror_deployment"] else {}
    return EndpointInfo(
        name=row["name"],
        workspace=row["workspace"],
        auth=row["auth"],
        url=EndpointInfo.url_under(base_url, row["name"]),
        deployments=tuple(deployment_info(r, r["traffic"]) for r in rows),
        mirror=mirror,
        generation=row["generation"],
        created_at=as_utc(row["created_at"]),
        sensitive=bool(row["sensitive"]),
        strict=bool(row["strict"]),
    )


@dataclass(frozen=True)
class Routable:
    """What a server needs to route an endpoint's requests: the endpoint, and the hashes of the keys it
    takes (loopline's own key apart)."""

    info: EndpointInfo
    key_hashes: tuple[str, ...]
    system_key_hash: str | None


def generations(connection: Connection, workspace: str) -> dict[str, int]:
    """Each endpoint of ``workspace`` with its generation, which every change to it bumps."""
    statement = select(endpoints.c.name, endpoints.c.generation).where(endpoints.c.workspace == workspace)
    return {row.name: row.generation for row in connection.execute(statement)}


def routing_snapshot(connection: Connection, workspace: str, base_url: str) -> dict[str, Routable]:
    """Every endpoint of ``workspace`` as a server routes it, read in the caller's transaction."""
    snapshot = {}
    rows = connection.execute(select(endpoints).where(endpoints.c.workspace == workspace)).mappings().all()
    for row in rows:
        hashes = connection.execute(
            select(endpoint_keys.c.key_hash).where(endpoint_keys.c.endpoint_id == row["id"])
        ).scalars()
        snapshot[row["name"]] = Routable(
            endpoint_info(connection, row, base_url), tuple(hashes), row["system_key_hash"]
        )
    return snapshot


def served_marks(instance: Instance, workspace: str) -> set[str]:
    """The marks a server of ``workspace`` says on ``/healthz`` (``keys.served_mark``), one an endpoint."""
    with instance.db.read() as connection:
        hashes = connection.execute(
            select(endpoints.c.system_key_hash).where(endpoints.c.workspace == workspace)
        ).scalars()
        return {keymod.served_mark(h) for h in hashes if h}


def scoped_row(
    connection: Connection, table: Table, kind: str, name: str, workspace: str | None, *, lock: bool = False
) -> Any:
    """The row of ``table`` (online or batch endpoints) for ``name`` in ``workspace``; without a workspace,
    the only one of that name. Names are unique within a workspace, so a name in several needs one."""
    statement = select(table).where(table.c.name == name)
    if workspace is not None:
        statement = statement.where(table.c.workspace == workspace)
    if lock:
        statement = statement.with_for_update()
    rows = connection.execute(statement).mappings().all()
    if not rows:
        where = f" in {workspace}" if workspace else ""
        listing = "batch-endpoint list" if kind.startswith("batch") else "endpoint list"
        raise NotFound(f"no {kind} named '{name}'{where}; `loopline {listing}` shows them")
    if len(rows) > 1:
        found = ", ".join(sorted(r["workspace"] for r in rows))
        article = "a" if kind[0] not in "aeiou" else "an"
        raise UsageError(
            f"there is {article} {kind} named '{name}' in {found}; name the workspace (--workspace NAME)"
        )
    return rows[0]

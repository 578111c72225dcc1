"""Creating, changing and reading online endpoints, their keys, deployments and traffic.

Every change happens in one write transaction that locks the endpoint's row, bumps its ``generation``
(which serving replicas watch) and appends its audit event, so replicas, the audit order and the final
state always agree.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from loopline import audit
from loopline.domain import SHARED, EndpointInfo, ServingPath, pinned, utcnow
from loopline.endpoints import keys as keymod
from loopline.endpoints.deployments import (
    choose_version,
    owned_rows,
    record_deployment,
    with_environment,
)
from loopline.endpoints.releases import abandon_pending
from loopline.endpoints.rows import (
    AUTH_MODES,
    check_name,
    endpoint_info,
    scoped_row,
)
from loopline.endpoints.traffic import check_mirror, check_traffic, with_share
from loopline.errors import NotFound, Refused, UsageError
from loopline.events import (
    DeploymentDeleted,
    EndpointCreated,
    EndpointDeleted,
    EndpointUpdated,
    Event,
    KeyRotated,
    TrafficChanged,
)
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import deployments, endpoint_keys, endpoints, instance_secrets, serving_paths

__all__ = [
    "KeyInfo",
    "create_deployment",
    "create_endpoint",
    "delete_deployment",
    "delete_endpoint",
    "get_endpoint",
    "key_listing",
    "list_endpoints",
    "regenerate_key",
    "set_traffic",
    "system_secret",
    "update_endpoint",
]


def _endpoint(connection: Connection, row: Any, instance: Instance) -> EndpointInfo:
    return endpoint_info(connection, row, instance.settings.endpoints_url(row["workspace"]))


def _row(connection: Connection, name: str, workspace: str | None = None, *, lock: bool = False) -> Any:
    return scoped_row(connection, endpoints, "endpoint", name, workspace, lock=lock)


def _again(connection: Connection, row: Any) -> Any:
    """``row``'s endpoint read again (after a change in the same transaction)."""
    return connection.execute(select(endpoints).where(endpoints.c.id == row["id"])).mappings().one()


def _bump(connection: Connection, endpoint_id: int) -> None:
    connection.execute(
        update(endpoints).where(endpoints.c.id == endpoint_id).values(generation=endpoints.c.generation + 1)
    )


def list_endpoints(instance: Instance, workspace: str | None = None) -> list[EndpointInfo]:
    """Every endpoint (of ``workspace`` when given), by name."""
    statement = select(endpoints).order_by(endpoints.c.name)
    if workspace:
        statement = statement.where(endpoints.c.workspace == workspace)
    with instance.db.read() as connection:
        return [
            _endpoint(connection, row, instance) for row in connection.execute(statement).mappings().all()
        ]


SERVING_SEEN_SECONDS = 180  # a serving process reports every minute; one silent for longer has stopped


def get_endpoint(
    instance: Instance, name: str, workspace: str | None = None, *, serving: bool = False
) -> EndpointInfo:
    """One endpoint with its deployments and traffic (``workspace`` where the name is in several); with
    ``serving``, what answers each deployment in every running serving process that loaded it."""
    if workspace:
        instance.require_workspace(workspace)
    with instance.db.read() as connection:
        info = _endpoint(connection, _row(connection, name, workspace), instance)
        if not serving:
            return info
        found = connection.execute(
            select(serving_paths)
            .where(
                (serving_paths.c.workspace == info.workspace)
                & (serving_paths.c.endpoint == info.name)
                & (serving_paths.c.seen_at >= utcnow() - timedelta(seconds=SERVING_SEEN_SECONDS))
            )
            .order_by(serving_paths.c.replica)
        ).mappings()
        reports: dict[tuple[str, str], list[ServingPath]] = {}
        for row in found:
            environment = tuple(map(str, row["environment"] or ()))
            path = ServingPath(row["replica"], row["path"], as_utc(row["seen_at"]), environment)
            reports.setdefault((row["deployment"], row["content_digest"]), []).append(path)
    return replace(
        info,
        deployments=tuple(
            replace(d, serving=tuple(reports.get((d.name, d.content_digest), ()))) for d in info.deployments
        ),
    )


def create_endpoint(
    instance: Instance,
    name: str,
    workspace: str,
    auth: str = "key",
    *,
    sensitive: bool = False,
    strict: bool = False,
) -> tuple[EndpointInfo, dict[str, str]]:
    """Create an endpoint; return it and, with key auth, its two keys (shown this once)."""
    check_name("endpoint", name)
    if auth not in AUTH_MODES:
        raise UsageError(f"auth '{auth}' is not one of {', '.join(AUTH_MODES)}")
    if workspace == SHARED:
        raise UsageError("the shared registry serves no endpoints; create the endpoint in a workspace")
    instance.require_workspace(workspace)
    instance.db.require_current(instance.root)
    # Servers recognise loopline's own key by its hash; they never read the secret it comes from.
    system_hash = keymod.hash_key(keymod.system_key(system_secret(instance), workspace, name))
    fresh = {slot: keymod.new_key() for slot in keymod.SLOTS} if auth == "key" else {}
    now = utcnow()
    with instance.db.write() as connection:
        taken = select(endpoints.c.id).where(endpoints.c.name == name, endpoints.c.workspace == workspace)
        if connection.execute(taken).first():
            raise Refused(f"{workspace} already has an endpoint named '{name}'; choose another name")
        endpoint_id = connection.execute(
            insert(endpoints).values(
                name=name,
                workspace=workspace,
                auth=auth,
                mirror_percent=0,
                generation=1,
                sensitive=sensitive,
                strict=strict,
                system_key_hash=system_hash,
                created_at=now,
                created_by=instance.actor,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        for slot, key in fresh.items():
            connection.execute(
                insert(endpoint_keys).values(
                    endpoint_id=endpoint_id,
                    slot=slot,
                    key_hash=keymod.hash_key(key),
                    prefix=keymod.public_prefix(key),
                    created_at=now,
                )
            )
        audit.append(
            connection,
            EndpointCreated(
                actor=instance.actor,
                workspace=workspace,
                target=name,
                details={"auth": auth, "strict": strict, "sensitive": sensitive},
            ),
        )
        info = _endpoint(connection, _row(connection, name, workspace), instance)
    return info, fresh


def update_endpoint(
    instance: Instance,
    name: str,
    workspace: str | None = None,
    *,
    strict: bool | None = None,
    sensitive: bool | None = None,
) -> EndpointInfo:
    """Change an endpoint's settings: ``strict`` request checks, ``sensitive`` (no monitoring samples)."""
    changes = {k: v for k, v in {"strict": strict, "sensitive": sensitive}.items() if v is not None}
    with instance.db.write() as connection:
        row = _row(connection, name, workspace, lock=True)
        before = {key: bool(row[key]) for key in changes}
        if changes and before != changes:
            connection.execute(update(endpoints).where(endpoints.c.id == row["id"]).values(**changes))
            _bump(connection, row["id"])
            audit.append(
                connection,
                EndpointUpdated(
                    actor=instance.actor,
                    workspace=row["workspace"],
                    target=name,
                    details={"from": before, "to": changes},
                ),
            )
        return _endpoint(connection, _again(connection, row), instance)


def delete_endpoint(
    instance: Instance,
    name: str,
    workspace: str | None = None,
    *,
    force: bool = False,
    event: Event | None = None,
) -> EndpointInfo:
    """Delete an endpoint; one that still has deployments only with ``force``. ``event`` is recorded
    instead of ``endpoint-deleted`` (a retirement's). A release of it in progress ends with it: it would
    otherwise stay unfinished and refuse every release of an endpoint of that name after it."""
    with instance.db.write() as connection:
        row = _row(connection, name, workspace, lock=True)
        info = _endpoint(connection, row, instance)
        if info.deployments and not force:
            listed = ", ".join(d.name for d in info.deployments)
            raise Refused(
                f"endpoint '{name}' still has deployments ({listed}); delete them first, or pass --force"
            )
        connection.execute(delete(deployments).where(deployments.c.endpoint_id == row["id"]))
        connection.execute(delete(endpoint_keys).where(endpoint_keys.c.endpoint_id == row["id"]))
        connection.execute(delete(endpoints).where(endpoints.c.id == row["id"]))
        abandon_pending(connection, info.workspace, name, instance.actor, "deletion of the endpoint")
        audit.append(
            connection,
            event
            or EndpointDeleted(
                actor=instance.actor,
                workspace=info.workspace,
                target=name,
                details={"deployments": [d.name for d in info.deployments]},
            ),
        )
    return info


@dataclass(frozen=True)
class KeyInfo:
    """A key as listings show it: its slot, a harmless prefix and when it was made."""

    slot: str
    prefix: str
    created_at: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready mapping."""
        return {"slot": self.slot, "prefix": self.prefix + "…", "created_at": self.created_at}


def key_listing(instance: Instance, name: str, workspace: str | None = None) -> list[KeyInfo]:
    """The endpoint's keys, without the keys themselves."""
    with instance.db.read() as connection:
        row = _row(connection, name, workspace)
        rows = owned_rows(connection, endpoint_keys, row["id"], "slot")
    return [
        KeyInfo(r["slot"], r["prefix"], as_utc(r["created_at"]).isoformat(timespec="seconds")) for r in rows
    ]


def regenerate_key(instance: Instance, name: str, slot: str, workspace: str | None = None) -> str:
    """Replace one key; the other keeps working, so callers can switch without a gap."""
    if slot not in keymod.SLOTS:
        raise UsageError(f"key slot '{slot}' is not one of {', '.join(keymod.SLOTS)}")
    key = keymod.new_key()
    with instance.db.write() as connection:
        row = _row(connection, name, workspace, lock=True)
        if row["auth"] != "key":
            raise Refused(f"endpoint '{name}' was created with --auth none and has no keys")
        connection.execute(
            update(endpoint_keys)
            .where(
                endpoint_keys.c.endpoint_id == row["id"],
                endpoint_keys.c.slot == slot,
            )
            .values(key_hash=keymod.hash_key(key), prefix=keymod.public_prefix(key), created_at=utcnow())
        )
        _bump(connection, row["id"])
        audit.append(
            connection,
            KeyRotated(
                actor=instance.actor,
                workspace=row["workspace"],
                target=name,
                details={"slot": slot},
            ),
        )
    return key


def system_secret(instance: Instance) -> str:
    """The instance's secret behind loopline's own endpoint key, made on first use."""
    with instance.db.read() as connection:
        value = connection.execute(
            select(instance_secrets.c.value).where(instance_secrets.c.name == "endpoint-system-key")
        ).scalar()
    if value:
        return str(value)
    with instance.db.write() as connection:
        value = connection.execute(
            select(instance_secrets.c.value).where(instance_secrets.c.name == "endpoint-system-key")
        ).scalar()
        if not value:
            value = _secrets.token_hex(32)
            connection.execute(insert(instance_secrets).values(name="endpoint-system-key", value=value))
    return str(value)


def create_deployment(
    instance: Instance,
    endpoint: str,
    name: str,
    model: str,
    *,
    version: int | None = None,
    commit: str | None = None,
    traffic: int | None = None,
    check: Callable[[Path], object] | None = None,
    workspace: str | None = None,
    latest: bool = False,
) -> EndpointInfo:
    """Deploy a model version of the endpoint's workspace; the first deployment takes all traffic, unless
    ``traffic`` is 0 (it is then loaded and answers requests naming it, and takes traffic when moved).

    The model's files are checked against their digest first, and ``check`` (loading the model and
    answering its input example) runs before the deployment is recorded.
    """
    check_name("deployment", name)
    current = get_endpoint(instance, endpoint, workspace)
    if current.deployment(name):
        raise Refused(f"endpoint '{endpoint}' already has a deployment named '{name}'")
    chosen, environment = choose_version(
        instance, current.workspace, model, version=version, commit=commit, check=check, latest=latest
    )
    with instance.db.write() as connection:
        row = _row(connection, endpoint, current.workspace, lock=True)
        before = _endpoint(connection, row, instance)
        if before.deployment(name):
            raise Refused(f"endpoint '{endpoint}' already has a deployment named '{name}'")
        shares = dict(before.traffic)
        if not any(shares.values()):  # the first deployment, or the first of an endpoint taking no traffic
            new_traffic = {**shares, name: 100 if traffic is None else _first_share(name, traffic)}
        elif traffic is None:
            new_traffic = {**shares, name: 0}
        else:
            new_traffic = with_share({**shares, name: 0}, name, traffic)
        if before.mirror and new_traffic.get(next(iter(before.mirror)), 0):
            raise Refused("that would give live traffic to the mirrored deployment; change the mirror first")
        record_deployment(
            connection,
            deployments,
            (row["id"], current.workspace, endpoint),
            name,
            chosen,
            instance.actor,
            {"traffic": new_traffic},
            environment,
            traffic=new_traffic[name],
        )
        _write_traffic(connection, row["id"], {k: v for k, v in new_traffic.items() if k != name})
        _bump(connection, row["id"])
        if new_traffic != {**shares, name: 0}:
            audit.append(
                connection,
                TrafficChanged(
                    actor=instance.actor,
                    workspace=current.workspace,
                    source=f"{endpoint}: {_describe(shares)}",
                    target=f"{endpoint}: {_describe(new_traffic)}",
                    details={"from": shares, "to": new_traffic},
                ),
            )
        created = _endpoint(connection, _again(connection, row), instance)
        return replace(created, deployments=with_environment(created.deployments, name, environment))


def _first_share(name: str, traffic: int) -> int:
    if traffic in (0, 100):
        return traffic
    raise Refused(
        f"'{name}' is the endpoint's first deployment, so it takes 100% of traffic or none (0, to move it "
        f"there later), not {traffic}%"
    )


def _write_traffic(connection: Connection, endpoint_id: int, shares: dict[str, int]) -> None:
    for deployment, percent in shares.items():
        connection.execute(
            update(deployments)
            .where(
                deployments.c.endpoint_id == endpoint_id,
                deployments.c.name == deployment,
            )
            .values(traffic=percent)
        )


def _describe(shares: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in shares.items()) or "(none)"


def delete_deployment(
    instance: Instance, endpoint: str, name: str, workspace: str | None = None
) -> EndpointInfo:
    """Remove a deployment that takes no traffic (live or mirrored)."""
    with instance.db.write() as connection:
        row = _row(connection, endpoint, workspace, lock=True)
        before = _endpoint(connection, row, instance)
        target = before.deployment(name)
        if target is None:
            raise NotFound(f"endpoint '{endpoint}' has no deployment named '{name}'")
        others = [d.name for d in before.deployments if d.name != name]
        if target.traffic:
            move = (
                " ".join(f"{o}={100 if i == 0 else 0}" for i, o in enumerate(others))
                or "(deploy another first)"
            )
            raise Refused(
                f"deployment '{name}' still takes {target.traffic}% of traffic; move it first: "
                f"loopline endpoint traffic {endpoint} {move}"
            )
        if name in before.mirror:
            raise Refused(
                f"deployment '{name}' receives mirrored traffic; first run: "
                f"loopline endpoint traffic {endpoint} {_describe(before.traffic)} --mirror none"
            )
        connection.execute(
            delete(deployments).where(
                deployments.c.endpoint_id == row["id"],
                deployments.c.name == name,
            )
        )
        _bump(connection, row["id"])
        audit.append(
            connection,
            DeploymentDeleted(
                actor=instance.actor,
                workspace=before.workspace,
                **pinned(target),
                target=f"{endpoint}/{name}",
            ),
        )
        return _endpoint(connection, _again(connection, row), instance)


def set_traffic(
    instance: Instance,
    endpoint: str,
    traffic: dict[str, int] | None,
    mirror: dict[str, int] | None = None,
    *,
    reason: str | None = None,
    workspace: str | None = None,
    also: Callable[[Connection], None] | None = None,
) -> EndpointInfo:
    """Set the whole traffic split (unnamed deployments get 0; None keeps it) and, when given, the mirror,
    in one transaction: a change of the mirror alone never races another change of the split. ``also``
    writes what goes with the change (a release's progress) in the same transaction."""
    with instance.db.write() as connection:
        row = _row(connection, endpoint, workspace, lock=True)
        before = _endpoint(connection, row, instance)
        full = check_traffic(
            [d.name for d in before.deployments], before.traffic if traffic is None else traffic
        )
        new_mirror = check_mirror(full, before.mirror if mirror is None else mirror)
        if also is not None:
            also(connection)
        if full == before.traffic and new_mirror == before.mirror:
            return before
        _write_traffic(connection, row["id"], full)
        name, percent = next(iter(new_mirror.items()), (None, 0))
        connection.execute(
            update(endpoints)
            .where(endpoints.c.id == row["id"])
            .values(
                mirror_deployment=name,
                mirror_percent=percent,
            )
        )
        _bump(connection, row["id"])
        audit.append(
            connection,
            TrafficChanged(
                actor=instance.actor,
                workspace=before.workspace,
                reason=reason,
                source=f"{endpoint}: {_describe(before.traffic)}",
                target=f"{endpoint}: {_describe(full)}",
                details={
                    "from": before.traffic,
                    "to": full,
                    "mirror_from": before.mirror,
                    "mirror_to": new_mirror,
                },
            ),
        )
        return _endpoint(connection, _again(connection, row), instance)


def ensure_endpoint(instance: Instance, name: str, workspace: str) -> EndpointInfo:
    """``workspace``'s endpoint called ``name``, created (with keys) on first use."""
    try:
        return get_endpoint(instance, name, workspace)
    except NotFound:
        return create_endpoint(instance, name, workspace, "key")[0]

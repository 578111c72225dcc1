"""An endpoint's release history: every version that took its main traffic, in order, by release or
rollback (what ``loopline releases`` lists and ``rollback --previous`` walks back through)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from loopline.domain import DeploymentInfo, pinned, utcnow
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import releases

__all__ = ["ReleaseRecord", "record_release", "release_history"]


@dataclass(frozen=True)
class ReleaseRecord:
    """A version that took an endpoint's main traffic."""

    workspace: str
    endpoint: str
    deployment: str
    model: str
    version: int
    git_commit: str
    kind: str
    at: str
    actor: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def record_release(
    connection: Connection,
    workspace: str,
    endpoint: str,
    deployment: DeploymentInfo,
    kind: str,
    actor: str,
    reason: str | None = None,
) -> None:
    """Append to an endpoint's release history (inside the caller's transaction)."""
    connection.execute(
        insert(releases).values(
            workspace=workspace,
            endpoint=endpoint,
            deployment=deployment.name,
            **pinned(deployment),
            kind=kind,
            at=utcnow(),
            actor=actor,
            reason=reason,
        )
    )


def release_history(instance: Instance, endpoint: str, workspace: str) -> list[ReleaseRecord]:
    """Every release and rollback of ``workspace``'s endpoint, oldest first."""
    with instance.db.read() as connection:
        rows = (
            connection.execute(
                select(releases)
                .where(releases.c.endpoint == endpoint, releases.c.workspace == workspace)
                .order_by(releases.c.id)
            )
            .mappings()
            .all()
        )
    return [
        ReleaseRecord(
            r["workspace"],
            r["endpoint"],
            r["deployment"],
            r["model"],
            r["version"],
            r["git_commit"],
            r["kind"],
            as_utc(r["at"]).isoformat(timespec="seconds"),
            r["actor"],
            r["reason"],
        )
        for r in rows
    ]

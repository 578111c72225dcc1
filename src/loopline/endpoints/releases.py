"""An endpoint's release history: every version that took its main traffic, in order, by release or
rollback (what ``loopline releases`` lists and ``rollback --previous`` walks back through); and the end of
a release in progress that something else took over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update

from loopline.domain import DeploymentInfo, pinned, utcnow
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import release_progress, releases

__all__ = ["ReleaseRecord", "abandon_pending", "record_release", "release_history", "unfinished"]

# The states of a release in progress (``release_progress``): running until it ends one of the other ways.
RUNNING, RELEASED, ROLLED_BACK, ABANDONED = "running", "released", "rolled-back", "abandoned"


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


def abandon_pending(connection: Connection, workspace: str, endpoint: str, actor: str, how: str) -> None:
    """End the endpoint's release in progress without finishing it: ``actor``'s ``how`` (a rollback or a
    split set by hand took the endpoint over, or the endpoint is deleted). A release still running sees it
    at its next traffic change or watch poll, and stops there, saying who ended it and how."""
    connection.execute(
        update(release_progress)
        .where(unfinished(workspace, endpoint))
        .values(state=ABANDONED, finished_at=utcnow(), ended_by=actor, ended_how=how)
    )


def unfinished(workspace: str, endpoint: str) -> ColumnElement[bool]:
    """Which rows of ``release_progress`` are the endpoint's release in progress."""
    return (
        (release_progress.c.workspace == workspace)
        & (release_progress.c.endpoint == endpoint)
        & (release_progress.c.state == RUNNING)
    )

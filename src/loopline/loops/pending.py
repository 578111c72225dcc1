"""A release to prod that began and has not ended: where it started from, the step it reached, and the way
back to what was live before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from loopline.domain import DeploymentInfo, utcnow
from loopline.endpoints import service
from loopline.endpoints.releases import unfinished
from loopline.instance import Instance
from loopline.loops.outer import PROD
from loopline.state import as_utc
from loopline.state.schema import release_progress

__all__ = ["PendingRelease", "end_release", "largest_share", "live_before", "pending_release", "way_back"]


@dataclass(frozen=True)
class PendingRelease:
    """A release that began and has not ended: where it started from and the step it reached."""

    id: int
    deployment: str
    model: str
    version: int
    git_commit: str
    content_digest: str
    before: dict[str, dict[str, int]]
    steps: list[int]
    watch_seconds: float
    step: int
    step_started_at: datetime | None

    def describe(self) -> str:
        """``proj-classifier v3 (3f2a9c1), stopped at 60%``."""
        where = f"stopped at {self.steps[self.step]}%" if self.step >= 0 else "stopped before moving traffic"
        return f"{self.model} v{self.version} ({self.git_commit[:7]}), {where}"


def pending_release(instance: Instance, workspace: str, endpoint: str) -> PendingRelease | None:
    """The endpoint's release in progress, if one began and did not end."""
    with instance.db.read() as connection:
        row = (
            connection.execute(
                select(release_progress)
                .where(unfinished(workspace, endpoint))
                .order_by(release_progress.c.id.desc())
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    started = row["step_started_at"]
    return PendingRelease(
        row["id"],
        row["deployment"],
        row["model"],
        row["version"],
        row["git_commit"],
        row["content_digest"],
        row["before"],
        list(row["steps"]),
        float(row["watch_seconds"]),
        row["step"],
        as_utc(started) if started is not None else None,
    )


def end_release(connection: Connection, release_id: int, state: str) -> None:
    """Mark the release ``release_id`` ended in ``state``, in the caller's transaction."""
    connection.execute(
        update(release_progress)
        .where(release_progress.c.id == release_id)
        .values(state=state, finished_at=utcnow())
    )


def largest_share(shares: dict[str, int], but: str | None = None) -> str | None:
    """The deployment with the largest share of ``shares`` (other than ``but``)."""
    others = {name: share for name, share in shares.items() if name != but}
    return max(others, key=lambda name: others[name]) if others else None


def live_before(instance: Instance, endpoint: str, pending: PendingRelease) -> DeploymentInfo | None:
    """The deployment that took the endpoint's main traffic before ``pending`` began (None on a first
    release)."""
    main = largest_share(pending.before.get("traffic", {}))
    return service.get_endpoint(instance, endpoint, PROD).deployment(main) if main else None


def way_back(instance: Instance, endpoint: str, pending: PendingRelease) -> str:
    """How to leave a release half done: roll back to the deployment that had the traffic before it."""
    deployed = live_before(instance, endpoint, pending)
    if deployed is None:
        return ""
    return f", or `loopline rollback --commit {deployed.git_commit[:7]}` to return to what was live before it"

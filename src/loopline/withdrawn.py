"""Withdrawn model versions: a model found wrong after it was registered (trained on leaked labels, say)
that no release, promotion, deployment or rollback may take again, in any workspace, until reinstated.

A withdrawal is bound to the version's files (its content digest, which every copy of it shares: dev, the
registry, test, prod), named by its model and commit. Each decision is a row; the newest row of a digest
stands. Both are audit events (``version-withdrawn``, ``version-reinstated``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, insert, select

from loopline import audit
from loopline.domain import SHARED, DeploymentInfo, ModelVersionInfo, pinned, utcnow
from loopline.errors import Refused, UsageError
from loopline.events import VersionReinstated, VersionWithdrawn
from loopline.state import Database, as_utc
from loopline.state.schema import withdrawals

__all__ = [
    "WITHDRAWN",
    "Withdrawal",
    "decide",
    "in_force",
    "refuse_withdrawn",
    "standing",
    "withdrawn_commits",
    "withdrawn_now",
]

WITHDRAWN, REINSTATED = "withdrawn", "reinstated"
T = TypeVar("T", ModelVersionInfo, DeploymentInfo)


@dataclass(frozen=True)
class Withdrawal:
    """One decision on a model version: withdrawn, or reinstated; who, when and why."""

    model: str
    version: int
    git_commit: str
    content_digest: str
    action: str
    reason: str
    actor: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**asdict(self), "created_at": self.created_at.isoformat()}

    @property
    def summary(self) -> str:
        """Who withdrew it, when and why, in one line."""
        return f"by {self.actor} on {self.created_at:%Y-%m-%d %H:%M} UTC: {self.reason}"


def _row(row: Any) -> Withdrawal:
    values = dict(row._mapping)
    values.pop("id")
    return Withdrawal(**{**values, "created_at": as_utc(values["created_at"])})


def decisions(db: Database, model: str | None = None) -> list[Withdrawal]:
    """Every decision, newest first (of ``model`` only, where given)."""
    query = select(withdrawals).order_by(withdrawals.c.id.desc())
    if model is not None:
        query = query.where(withdrawals.c.model == model)
    with db.read() as connection:
        return [_row(row) for row in connection.execute(query)]


def standing(db: Database, content_digest: str) -> Withdrawal | None:
    """The withdrawal that stands for the version with these files, or None."""
    with db.read() as connection:
        return _standing(connection, content_digest)


def _standing(connection: Connection, content_digest: str) -> Withdrawal | None:
    query = (
        select(withdrawals)
        .where(withdrawals.c.content_digest == content_digest)
        .order_by(withdrawals.c.id.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    found = _row(row) if row is not None else None
    return found if found is not None and found.action == WITHDRAWN else None


def in_force(newest_first: list[Withdrawal]) -> list[Withdrawal]:
    """The withdrawals of these decisions (newest first) that stand: the newest decision on a version's
    files is the one in force."""
    newest: dict[str, Withdrawal] = {}
    for decision in newest_first:
        newest.setdefault(decision.content_digest, decision)
    return [d for d in newest.values() if d.action == WITHDRAWN]


def withdrawn_now(db: Database) -> list[Withdrawal]:
    """The withdrawals that stand, one a version's files."""
    return in_force(decisions(db))


def withdrawn_commits(db: Database) -> set[tuple[str, str]]:
    """(model, commit) of every version withdrawn now."""
    return {(d.model, d.git_commit) for d in withdrawn_now(db)}


def refuse_withdrawn(db: Database, subject: T, workspace: str | None = None) -> T:
    """``subject`` (a model version, or a deployment pinning one, of ``workspace``), or Refused when its
    files are withdrawn (naming who, when, why, and how to reinstate it)."""
    found = standing(db, subject.content_digest) if subject.content_digest else None
    if found is None:
        return subject
    workspace = getattr(subject, "workspace", workspace)
    where = f" in {'the registry' if workspace == SHARED else workspace}" if workspace else ""
    raise Refused(
        f"{pinned(subject)['model']} v{subject.version}{where} ({subject.git_commit[:7]}) was withdrawn "
        f"{found.summary}; no release, promotion, "
        f"deployment, rollback or batch job takes it (`loopline reinstate --commit {subject.git_commit[:7]} "
        "--reason ...` undoes that)"
    )


def decide(
    db: Database,
    version: ModelVersionInfo,
    *,
    action: str,
    reason: str,
    actor: str,
    mirror: Callable[[str | None, str | None], None] | None = None,
) -> Withdrawal:
    """Record ``actor``'s withdrawal (or reinstatement) of ``version`` and its audit event, at once.
    ``mirror(now, before)`` is called first with the summary of the withdrawal that stands after the
    decision and before it (None where none does): it copies the decision to MLflow's tags."""
    if not reason.strip():
        raise UsageError("say why with --reason: the audit log keeps it with the decision")
    now = standing(db, version.content_digest)
    _refuse_undecidable(version, action, now)
    values = {
        **pinned(version),
        "content_digest": version.content_digest,
        "action": action,
        "reason": reason,
        "actor": actor,
        "created_at": utcnow(),
    }
    after = Withdrawal(**values) if action == WITHDRAWN else None
    if mirror is not None:
        mirror(after.summary if after else None, now.summary if now else None)
    event = VersionWithdrawn if action == WITHDRAWN else VersionReinstated
    latest = now
    try:
        with db.write() as connection:
            # Every audited write holds the audit's head: decisions on one version are taken one at a
            # time, and what stands is read again under it (another may have been taken since).
            audit.append(
                connection,
                event(
                    actor=actor,
                    workspace=version.workspace,
                    **pinned(version),
                    reason=reason,
                    details={"content_digest": version.content_digest},
                ),
            )
            latest = _standing(connection, version.content_digest)
            _refuse_undecidable(version, action, latest)
            connection.execute(insert(withdrawals).values(**values))
    except BaseException:
        if mirror is not None:  # MLflow's tags back to the decision that stands
            with contextlib.suppress(Exception):  # the error being raised says what failed
                mirror(latest.summary if latest else None, after.summary if after else None)
        raise
    return Withdrawal(**values)


def _refuse_undecidable(version: ModelVersionInfo, action: str, now: Withdrawal | None) -> None:
    """Refused where ``action`` would not change what stands (``now``)."""
    if action == WITHDRAWN and now is not None:
        raise Refused(
            f"{version.name} {version.git_commit[:7]} is withdrawn already (by {now.actor}: {now.reason})"
        )
    if action == REINSTATED and now is None:
        raise Refused(f"{version.name} {version.git_commit[:7]} is not withdrawn: nothing to reinstate")

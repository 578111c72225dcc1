"""Approvals of releases to prod: four eyes, bound to what was seen, for a time.

With ``release.approvals.required`` above 0, ``outer-loop prod`` releases a version only when that many
approvers other than the one releasing have approved it: the same model version (its content digest), on
the same evidence (the newest validation of its commit in test, or in the simple tier its gate in dev),
within ``expires_after``. A standing denial stops it. An approval asked for and not there is recorded as
``approval-requested`` (so webhooks tell the approvers); approvals and denials as ``approval-decided``.

In GitHub Actions, with ``github_environment`` set, an approved deployment review of that protected
environment for the workflow run counts as one approval, recorded with the run's URL.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import insert, select

from loopline import audit
from loopline.access import Role, list_users
from loopline.domain import ModelVersionInfo, Tier, parse_duration, pinned, utcnow
from loopline.errors import ApprovalNeeded, Forbidden, NotFound, Refused, UsageError
from loopline.events import ApprovalDecided, ApprovalRequested, RefusedAttempt
from loopline.instance import Instance
from loopline.loops.outer import registry_version
from loopline.net import http_request
from loopline.progress import NullReporter, Reporter
from loopline.state import as_utc
from loopline.state.schema import approvals

__all__ = [
    "Approval",
    "ApprovalState",
    "Retirement",
    "approval_state",
    "decide",
    "require",
    "retirement",
    "waiting",
]

PROD = "prod"
RETIRE = "retire"
APPROVED, DENIED = "approved", "denied"
_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Approval:
    """One approver's decision on releasing a version to prod."""

    id: int
    model: str
    version: int
    git_commit: str
    content_digest: str
    report_digest: str | None
    decision: str
    approver: str
    requested_by: str | None
    reason: str
    created_at: datetime
    expires_at: datetime
    source: str
    run_url: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        return data


@dataclass(frozen=True)
class ApprovalState:
    """Where a version's release to prod stands: approvals needed, standing ones, who asked."""

    model: str
    version: int
    git_commit: str
    required: int
    approvers: list[str]
    requested_by: str | None
    standing: list[Approval]

    @property
    def approved(self) -> list[Approval]:
        """The standing approvals."""
        return [a for a in self.standing if a.decision == APPROVED]

    @property
    def denied(self) -> list[Approval]:
        """The standing denials."""
        return [a for a in self.standing if a.decision == DENIED]

    @property
    def status(self) -> str:
        """``denied``, ``approved`` (enough approvals stand) or ``waiting``."""
        if self.denied:
            return DENIED
        return APPROVED if len(self.approved) >= self.required else "waiting"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "status": self.status,
            "model": self.model,
            "version": self.version,
            "git_commit": self.git_commit,
            "required": self.required,
            "approvers": self.approvers,
            "requested_by": self.requested_by,
            "standing": [a.to_dict() for a in self.standing],
        }


@dataclass(frozen=True)
class Retirement:
    """A prod endpoint's retirement, as approvals name it (in place of a model version)."""

    endpoint: str
    created: str
    """When the endpoint was made: an endpoint made again under the same name needs new approvals."""

    @property
    def name(self) -> str:
        return f"endpoint:{self.endpoint}"

    @property
    def version(self) -> int:
        return 0

    @property
    def git_commit(self) -> str:
        return RETIRE

    @property
    def content_digest(self) -> str:
        return f"endpoint:{PROD}/{self.endpoint}@{self.created}"


Subject = ModelVersionInfo | Retirement
"""What approvals are about: a version's release to prod, or a prod endpoint's retirement."""


def _row(row: Any) -> Approval:
    values = dict(row)
    values["created_at"] = as_utc(values["created_at"])
    values["expires_at"] = as_utc(values["expires_at"])
    return Approval(**values)


def evidence(instance: Instance, version: Subject) -> str | None:
    """The digest of what an approver judges a version on: its commit's newest validation in test (full
    tier), else its newest gate in dev; None when there is none. A retirement is judged on the endpoint."""
    if isinstance(version, Retirement):
        return version.content_digest
    where = "test" if instance.settings.tier is Tier.FULL else "dev"
    found = audit.query(
        instance.db, commit=version.git_commit, kind="gate-evaluated", workspace=where, limit=1
    )
    return found[0].hash if found else None


def _standing(instance: Instance, version: Subject) -> list[Approval]:
    """Each approver's newest decision on exactly this version and evidence that has not expired."""
    report = evidence(instance, version)
    table = approvals.c
    statement = (
        select(approvals)
        .where(table.git_commit == version.git_commit, table.model == version.name)
        .where(table.version == version.version, table.content_digest == version.content_digest)
        .order_by(table.id.desc())
    )
    with instance.db.read() as connection:
        rows = [_row(r) for r in connection.execute(statement).mappings().all()]
    newest: dict[str, Approval] = {}
    for row in rows:
        newest.setdefault(row.approver, row)
    now = utcnow()
    return [a for a in newest.values() if a.report_digest == report and a.expires_at > now]


def _requester(instance: Instance, version: Subject) -> str | None:
    found = audit.query(
        instance.db, commit=version.git_commit, kind="approval-requested", model=version.name, limit=1
    )
    return found[0].event.actor if found else None


def approval_state(instance: Instance, version: Subject) -> ApprovalState:
    """Where the release of ``version`` stands."""
    config = instance.settings.config.release.approvals
    return ApprovalState(
        version.name,
        version.version,
        version.git_commit,
        config.required,
        list(config.approvers) or ["role:releaser"],
        _requester(instance, version),
        _standing(instance, version),
    )


def waiting(instance: Instance, limit: int = 20) -> list[ApprovalState]:
    """The releases asked for most recently (one per version, newest first), with where each stands."""
    asked = audit.query(instance.db, kind="approval-requested", limit=500)
    seen: set[tuple[str, str]] = set()
    states = []
    for record in reversed(asked):
        key = (record.event.model or "", record.event.git_commit or "")
        if key in seen or not all(key):
            continue
        seen.add(key)
        try:
            subject = (
                retirement(instance, key[0].removeprefix("endpoint:"))
                if key[1] == RETIRE
                else registry_version(instance, key[0], key[1])
            )
        except NotFound:  # the version is gone from the registry, the endpoint retired
            continue
        states.append(approval_state(instance, subject))
        if len(states) >= limit:
            break
    return states


def retirement(instance: Instance, endpoint: str) -> Retirement:
    """The retirement of prod's endpoint ``endpoint`` (which must exist), as approvals name it."""
    from loopline.endpoints import service

    info = service.get_endpoint(instance, endpoint, PROD)
    return Retirement(endpoint, info.created_at.isoformat() if info.created_at else "")


def _may_approve(instance: Instance, user: str) -> bool:
    approvers = list(instance.settings.config.release.approvals.approvers) or ["role:releaser"]
    if user in approvers:
        return True
    roles = next((u.roles for u in list_users(instance.db) if u.name == user), {})
    held = [Role.parse(role) for where, role in roles.items() if where in (PROD, "*")]
    highest = max(held, default=None)
    return any(
        entry.startswith("role:") and highest is not None and highest >= Role.parse(entry[5:])
        for entry in approvers
    )


def _refuse(instance: Instance, version: Subject, error: Refused, step: str) -> None:
    audit.record(
        instance.db,
        RefusedAttempt(
            actor=instance.actor,
            workspace=PROD,
            **pinned(version),
            reason=error.message,
            outcome="forbidden" if isinstance(error, Forbidden) else "ok",
            details={"step": step},
        ),
    )
    raise error


def decide(
    instance: Instance,
    version: Subject,
    *,
    reason: str,
    decision: str = APPROVED,
    source: str = "loopline",
    approver: str | None = None,
    run_url: str | None = None,
) -> Approval:
    """Record ``approver``'s (default: the actor's) decision on releasing ``version`` to prod."""
    config = instance.settings.config.release.approvals
    who = approver or instance.actor
    if config.required == 0:
        raise UsageError("releases need no approval here (release.approvals.required is 0 in loopline.yaml)")
    if not reason.strip():
        raise UsageError("say why with --reason: the audit log keeps it with the decision")
    if source == "loopline" and not _may_approve(instance, who):
        approvers = ", ".join(config.approvers or ["role:releaser"])
        _refuse(
            instance,
            version,
            Forbidden(f"{who} is not an approver of releases to prod (approvers: {approvers})"),
            "approve",
        )
    requester = _requester(instance, version)
    if requester == who:
        _refuse(
            instance,
            version,
            Refused(f"{who} asked for {_name(version)}, so another approver must decide on it (four eyes)"),
            "approve",
        )
    report = evidence(instance, version)
    if report is None:
        _refuse(
            instance,
            version,
            Refused(
                f"commit {version.git_commit[:7]} has no validation to approve on yet: run "
                f"`loopline outer-loop test --commit {version.git_commit[:7]}` first"
            ),
            "approve",
        )
    now = utcnow()
    values = {
        **pinned(version),
        "content_digest": version.content_digest,
        "report_digest": report,
        "decision": decision,
        "approver": who,
        "requested_by": requester,
        "reason": reason,
        "created_at": now,
        "expires_at": now + parse_duration(config.expires_after, "release.approvals.expires_after"),
        "source": source,
        "run_url": run_url,
    }
    with instance.db.write() as connection:
        new_id = connection.execute(insert(approvals).values(**values)).inserted_primary_key[0]  # type: ignore[index]
        audit.append(
            connection,
            ApprovalDecided(
                actor=who,
                workspace=PROD,
                **pinned(version),
                reason=reason,
                outcome="ok" if decision == APPROVED else DENIED,
                details={
                    "decision": decision,
                    "source": source,
                    "report_digest": report,
                    "run_url": run_url,
                    "requested_by": requester,
                    "expires_at": values["expires_at"].isoformat(),
                },
            ),
        )
    return Approval(id=int(new_id), **values)


def require(
    instance: Instance, version: Subject, *, wait: float = 0.0, reporter: Reporter | None = None
) -> list[Approval]:
    """The approvals that let ``version`` go to prod; ask for them (and wait up to ``wait`` seconds) when
    they are not there, then refuse."""
    config = instance.settings.config.release.approvals
    if config.required == 0:
        return []
    report_to = reporter or NullReporter()
    actor = instance.actor
    if config.github_environment and isinstance(version, ModelVersionInfo):
        _github_review(instance, version, config.github_environment)
    deadline = time.monotonic() + wait
    asked = False
    while True:
        state = approval_state(instance, version)
        others = [a for a in state.standing if a.approver != actor]
        if denied := [a for a in others if a.decision == DENIED]:
            _refuse(
                instance,
                version,
                ApprovalNeeded(f"{denied[0].approver} denied {_name(version)}: {denied[0].reason}"),
                "approvals",
            )
        approved = [a for a in others if a.decision == APPROVED]
        if len(approved) >= config.required:
            report_to.step(f"approved by {', '.join(a.approver for a in approved)}")
            return approved
        if not asked:
            asked = True
            if state.requested_by != actor:
                audit.record(
                    instance.db,
                    ApprovalRequested(
                        actor=actor,
                        workspace=PROD,
                        **pinned(version),
                        details={
                            "required": config.required,
                            "given": len(approved),
                            "approvers": state.approvers,
                        },
                    ),
                )
            if wait > 0:
                report_to.step(
                    f"waiting up to {wait:.0f} s for {config.required - len(approved)} more approval(s)"
                )
        if time.monotonic() >= deadline:
            which = (
                f"--retire {version.endpoint}"
                if isinstance(version, Retirement)
                else f"--commit {version.git_commit[:7]}"
            )
            raise ApprovalNeeded(
                f"{_name(version)} needs {config.required} approval(s) ({len(approved)} given); an approver "
                f"({', '.join(state.approvers)}) other than {actor} runs `loopline approve {which} --reason "
                "TEXT`, then run this again"
                + ("" if isinstance(version, Retirement) else " (or use --approval-wait 30m)")
            )
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.05)))


def _name(version: Subject) -> str:
    if isinstance(version, Retirement):
        return f"the retirement of prod's endpoint {version.endpoint}"
    return f"the release of {version.name} v{version.version} ({version.git_commit[:7]}) to prod"


def _github_review(instance: Instance, version: ModelVersionInfo, environment: str) -> None:
    """Record an approved deployment review of ``environment`` for this GitHub Actions run as an approval
    (once); nothing outside GitHub Actions."""
    run, repository = os.environ.get("GITHUB_RUN_ID"), os.environ.get("GITHUB_REPOSITORY")
    token = os.environ.get("GITHUB_TOKEN")
    if os.environ.get("GITHUB_ACTIONS") != "true" or not run or not repository:
        return
    if not token:
        raise UsageError("release.approvals.github_environment needs GITHUB_TOKEN in the step's environment")
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    run_url = f"{server}/{repository}/actions/runs/{run}"
    try:
        answer = http_request(
            "GET",
            f"{api}/repos/{repository}/actions/runs/{run}/approvals",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            timeout=30,
        )
        answer.raise_for_status()
        reviews = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused(f"could not read this run's deployment reviews from GitHub ({api}): {exc}") from None
    for review in reviews:
        names = {e.get("name") for e in review.get("environments", [])}
        login = (review.get("user") or {}).get("login")
        if review.get("state") != "approved" or environment not in names or login in (None, instance.actor):
            continue
        if any(a.run_url == run_url and a.approver == login for a in _standing(instance, version)):
            return
        decide(
            instance,
            version,
            reason=review.get("comment") or f"approved the {environment} environment in GitHub",
            source="github-environment",
            approver=login,
            run_url=run_url,
        )
        return

"""Releasing a commit's model to prod, step by step, in a way that survives a crash at any step.

A release records its progress in loopline's database (``release_progress``): the split it started from,
its canary steps, the step it reached and when that step's watch began. Each traffic change and the
progress that goes with it are one transaction. Run again after a crash, the same release continues
from the step it reached, watching what is left of that step's window (the requests served while it was
down count); a breach in any window returns the endpoint to the split it had before the release began,
and the ``production`` alias only ever moves when the last step is done.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loopline import audit, failpoints, registry
from loopline.domain import (
    PRODUCTION,
    DeploymentInfo,
    EndpointInfo,
    ModelVersionInfo,
    Tier,
    canary_steps,
    pinned,
    utcnow,
)
from loopline.endpoints import service
from loopline.endpoints.client import Live, lagging, live_server
from loopline.endpoints.releases import (
    ABANDONED,
    RELEASED,
    ROLLED_BACK,
    RUNNING,
    abandon_pending,
    record_release,
    release_history,
)
from loopline.errors import Refused, UsageError
from loopline.events import RefusedAttempt, Released, RolledBack
from loopline.instance import Instance
from loopline.loops import approvals, breaking
from loopline.loops.batch_follow import check_followers, follow
from loopline.loops.outer import (
    PROD,
    Smoked,
    candidate_of,
    deploy,
    promote,
    registry_version,
    require_prod,
    smoke_test,
)
from loopline.loops.pending import PendingRelease, end_release, largest_share, pending_release, way_back
from loopline.loops.release_result import ReleaseResult
from loopline.progress import NullReporter, Reporter
from loopline.serving.stats import WindowStats, window_stats
from loopline.state import as_utc, locks
from loopline.state.schema import release_progress

__all__ = [
    "ReleaseResult",
    "abandon_pending",
    "run_outer_loop_prod",
]


def _validation_overridden(
    instance: Instance, candidate: ModelVersionInfo, override_reason: str | None
) -> bool:
    """Whether the release goes ahead past the full tier's validation rule (only a version that passed test)
    on ``override_reason``; False where the rule holds or does not apply. Refused, and audited, where it
    does not hold and no reason is given."""
    config = instance.settings.config.release
    if instance.settings.tier is not Tier.FULL or not config.require_validation:
        return False
    if candidate.validation_status == "passed":
        return False
    status = f"{candidate.validation_status} validation" if candidate.validation_status else "not validated"
    if override_reason:
        return True
    message = (
        f"{candidate.name} v{candidate.version} ({candidate.git_commit[:7]}) {status} in test; run "
        f"`loopline outer-loop test --commit {candidate.git_commit[:7]}` first, or pass --override-reason"
    )
    raise refused_release(instance, candidate, message)


def refused_release(instance: Instance, version: ModelVersionInfo, message: str, **details: Any) -> Refused:
    """The refusal of releasing ``version`` to prod, recorded in the audit log first."""
    audit.record(
        instance.db,
        RefusedAttempt(
            actor=instance.actor,
            workspace=PROD,
            **pinned(version),
            reason=message,
            details={"step": "outer-loop prod", **details},
        ),
    )
    return Refused(message)


def run_outer_loop_prod(
    instance: Instance,
    *,
    commit: str | None = None,
    model: str | None = None,
    canary: list[int] | None = None,
    watch: float | None = None,
    override_reason: str | None = None,
    approval_wait: float = 0.0,
    breaking_change: str | None = None,
    reporter: Reporter | None = None,
) -> ReleaseResult:
    """Release a commit's registry version to prod: copy, deploy at 0%, smoke-test, move traffic step by
    step (continuing a release of the same version that a crash interrupted). Where releases need
    approvals, wait up to ``approval_wait`` seconds for them. A version that would break the clients of
    the live one (``loops/breaking.py``) is refused, unless ``breaking_change`` says why it goes live."""
    report_to = reporter or NullReporter()
    if canary is not None:
        canary_steps(canary)
    if watch is not None and not 0 <= watch < math.inf:  # NaN too
        raise UsageError(f"watch is {watch} seconds; give 0 or more")
    require_prod(instance, "outer-loop prod")
    instance.db.require_current(instance.root)
    check_followers(instance)
    candidate = registry_version(instance, instance.model_name(model), commit, report_to)
    name = candidate.name  # the name it had at its commit, where model.name changed since
    overridden = _validation_overridden(instance, candidate, override_reason)
    endpoint_name = instance.settings.prod_endpoint
    began = pending_release(instance, PROD, endpoint_name)
    if began is None or began.content_digest != candidate.content_digest:  # a release resumed was approved
        approvals.require(instance, candidate, wait=approval_wait, reporter=report_to)
    with locks.hold(instance.db, f"release:{PROD}:{endpoint_name}", instance.actor):
        pending = pending_release(instance, PROD, endpoint_name)
        if pending is not None and pending.content_digest != candidate.content_digest:
            back = way_back(instance, endpoint_name, pending)
            raise Refused(
                f"the release of {pending.describe()}, has not ended: run `loopline outer-loop prod "
                f"--commit {pending.git_commit[:7]}` to finish it{back}"
            )
        report_to.step(f"releasing {name} v{candidate.version} from {candidate.git_commit[:7]} to prod")
        # The endpoint first: a release that cannot have one stops before anything is copied.
        endpoint = service.ensure_endpoint(instance, endpoint_name, PROD)
        in_prod = promote(instance, candidate, PROD, report_to)
        # At 0% even on a new endpoint: nothing goes live before its smoke test passes.
        deployment = deploy(instance, endpoint, in_prod, report_to, traffic=0)
        failpoints.hit("release-after-deploy")
        release = Release(instance, endpoint, name, in_prod, deployment, report_to, override_reason, pending)
        release.overridden = overridden
        release.breaking_reason = breaking_change
        release.registry_version = candidate.version
        result = release.run(canary, watch)
        # Also where it was live already: a release cut short after its traffic moved is finished here.
        follow(instance, result, in_prod, f"follows the release of {in_prod.git_commit[:7]}", report_to)
    return result


class Release:
    """Moving one endpoint's traffic to a new deployment, step by step, watching each step."""

    def __init__(
        self,
        instance: Instance,
        endpoint: EndpointInfo,
        model: str,
        version: ModelVersionInfo,
        deployment: DeploymentInfo,
        reporter: Reporter,
        reason: str | None,
        pending: PendingRelease | None,
    ) -> None:
        self.instance = instance
        self.endpoint = endpoint.name
        self.model = model
        self.version = version
        self.deployment = deployment
        self.reporter = reporter
        self.reason = reason
        self.pending = pending
        self.overridden = False
        self.breaking_reason: str | None = None  # why a version breaking the live one's clients goes live
        self.broken: str | None = None  # how it breaks them, where that was accepted
        self.registry_version = version.version  # the shared registry's number for the same model
        self.config = instance.settings.config.release
        if pending is not None:
            self.before = pending.before
        else:
            live = {d.name: d.traffic for d in endpoint.deployments if d.traffic > 0}
            self.before = {"traffic": live, "mirror": dict(endpoint.mirror)}
        main = largest_share(self.before["traffic"], but=deployment.name)
        self.previous = endpoint.deployment(main) if main else None
        # By the start of a step: the replaced deployment's refusals in the window before it, read once.
        self._refused_earlier: dict[float, float | None] = {}

    def result(
        self, message: str, changed: bool, steps: list[dict[str, Any]], temporary: bool
    ) -> ReleaseResult:
        """The outcome."""
        previous = (
            None
            if self.previous is None
            else {
                "deployment": self.previous.name,
                "version": self.previous.version,
                "git_commit": self.previous.git_commit,
            }
        )
        return ReleaseResult(
            self.model,
            self.version.git_commit,
            self.version.version,
            self.endpoint,
            self.deployment.name,
            previous,
            changed,
            message,
            steps,
            self.reason,
            temporary,
        )

    def _named(self) -> str:
        """The model as the release names it: the registry's version (as ``releasing ...`` said), and
        prod's own number for its copy where that differs."""
        copy = f"; v{self.version.version} in prod" if self.version.version != self.registry_version else ""
        return f"{self.model} v{self.registry_version} ({self.version.git_commit[:7]}{copy})"

    def _live_already(self) -> bool:
        current = service.get_endpoint(self.instance, self.endpoint, PROD).deployment(self.deployment.name)
        history = release_history(self.instance, self.endpoint, PROD)
        return (
            current is not None
            and current.traffic == 100
            and bool(history)
            and history[-1].deployment == current.name
        )

    def _plan(self, canary: list[int] | None, watch: float | None) -> tuple[list[int], float]:
        if self.pending is not None:
            return self.pending.steps, self.pending.watch_seconds
        if self.previous is None:  # the first release: nothing to step from, nothing to return to
            return [100], 0.0
        steps = (canary if canary is not None else self.config.canary) or [100]
        seconds = watch if watch is not None else (self.config.watch_seconds if len(steps) > 1 else 0.0)
        return steps, seconds

    def _begin(self, steps: list[int], seconds: float) -> PendingRelease:
        with self.instance.db.write() as connection:
            release_id = connection.execute(
                insert(release_progress).values(
                    workspace=PROD,
                    endpoint=self.endpoint,
                    deployment=self.deployment.name,
                    model=self.model,
                    version=self.version.version,
                    git_commit=self.version.git_commit,
                    content_digest=self.version.content_digest,
                    before=self.before,
                    steps=steps,
                    watch_seconds=seconds,
                    step=-1,
                    state=RUNNING,
                    reason=self.reason,
                    started_at=utcnow(),
                    actor=self.instance.actor,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return PendingRelease(
            int(release_id),
            self.deployment.name,
            self.model,
            self.version.version,
            self.version.git_commit,
            self.version.content_digest,
            self.before,
            steps,
            seconds,
            -1,
            None,
        )

    def run(self, canary: list[int] | None, watch: float | None) -> ReleaseResult:
        """Smoke-test, move traffic (at once or in canary steps, from the step a crash left it at), then
        move the alias."""
        if self._live_already():
            self._finish()
            return self.result(
                f"{self._named()} is already live in prod; nothing to do",
                False,
                [],
                False,
            )
        steps, seconds = self._plan(canary, watch)
        progress = self.pending or self._begin(steps, seconds)
        first = max(progress.step, 0)
        if self.pending is not None:
            self.reporter.step(f"continuing the release of {progress.describe()}")
        watched: list[dict[str, Any]] = []
        with live_server(self.instance, PROD) as live:
            if live.temporary:
                self.reporter.step(f"{live.why}; smoke-testing on a temporary one (no live traffic to watch)")
            try:
                smoked = smoke_test(
                    self.instance,
                    live.client,
                    candidate_of(self.instance, self.endpoint, self.deployment, self.version),
                )
                if progress.step < 0:  # a release resumed was compared before
                    self._keeps_clients(live, smoked)
            except Refused:
                if progress.step < 0:  # nothing moved: the release is over, and blocks no other one
                    with self.instance.db.write() as connection:
                        end_release(connection, progress.id, ABANDONED)
                raise
            for index in range(first, len(steps)):
                percent = steps[index]
                resumed = progress.step_started_at if index == progress.step else None
                started = resumed.timestamp() if resumed is not None else time.time()
                self._shift(progress.id, index, percent, started, live)
                failpoints.hit("release-mid-traffic")
                failpoints.hit(f"release-step-{percent}")
                if seconds > 0:
                    step = self._watch(progress.id, percent, seconds, started)
                    watched.append(step)
                    if step["breach"]:
                        self._roll_back(progress.id, step)
                else:
                    watched.append({"percent": percent, "seconds": 0, "judged": False, "breach": None})
            temporary = live.temporary
        with self.instance.db.read() as connection:
            self._still_running(connection, progress.id)
        self._finish()
        self._prune()
        return self.result(
            f"released {self._named()} to prod endpoint {self.endpoint}",
            True,
            watched,
            temporary,
        )

    def _keeps_clients(self, live: Live, smoked: Smoked | None) -> None:
        """Refuse a version that would break the clients of the live deployment (``loops/breaking.py``),
        unless ``breaking_change`` says why it goes live so; audited either way."""
        if self.previous is None:
            return
        found = breaking.breaking_change(
            self.instance, live.client, self.endpoint, self.deployment, self.previous, smoked
        )
        if found is None:
            return
        self.broken = found.change
        if self.breaking_reason:
            self.reporter.step(f"breaking change: {self._named()} {found.change}")
            return
        message = (
            f"{self._named()} {found.change}: its clients {found.clients} once traffic moves; once they "
            "are ready for it, release it with --breaking-change REASON"
        )
        raise refused_release(self.instance, self.version, message, endpoint=self.endpoint)

    def _shift(self, release_id: int, index: int, percent: int, started: float, live: Live) -> None:
        """Move ``percent`` of the traffic to the new deployment, and wait for the server to route so:
        a release that says a model is live means requests reach it."""
        split = {self.deployment.name: percent}
        if self.previous is not None:
            split[self.previous.name] = 100 - percent
        self.reporter.step(f"traffic: {' '.join(f'{k}={v}' for k, v in split.items())}")

        def reached(connection: Connection) -> None:
            self._still_running(connection, release_id)
            connection.execute(
                update(release_progress)
                .where(release_progress.c.id == release_id)
                .values(step=index, step_started_at=datetime.fromtimestamp(started, tz=UTC))
            )

        service.set_traffic(
            self.instance,
            self.endpoint,
            split,
            reason=self.reason or "outer-loop prod",
            workspace=PROD,
            also=reached,
        )
        if not live.client.follows(self.endpoint, split):
            self.reporter.step(lagging(live.client.base_url))

    def _still_running(self, connection: Connection, release_id: int) -> None:
        """Refuse to go on once the release was ended by someone else: a rollback or a split set by hand
        took the endpoint over (and sets its traffic), or the endpoint was deleted."""
        row = (
            connection.execute(select(release_progress).where(release_progress.c.id == release_id))
            .mappings()
            .one()
        )
        if row["state"] != RUNNING:
            ended = (
                f"stopped by {row['ended_by']}'s {row['ended_how']}"
                + (f" at {as_utc(row['finished_at']):%H:%M:%S} UTC" if row["finished_at"] else "")
                if row["ended_by"]
                else "stopped: a rollback, a split set by hand or the deletion of prod endpoint "
                f"{self.endpoint} ended it"
            )
            raise Refused(
                f"the release of {self._named()} was {ended}; it moves no more traffic and the production "
                "alias did not move (`loopline history --workspace prod` shows what happened)"
            )

    def _watch(self, release_id: int, percent: int, seconds: float, started: float) -> dict[str, Any]:
        """Watch the new deployment from ``started`` (epoch seconds) for ``seconds``; stop at a breach, or
        once someone else ended the release (``_still_running``)."""
        deadline = started + seconds
        step: dict[str, Any] = {}
        while True:
            time.sleep(min(1.0, max(0.0, deadline - time.time())))
            with self.instance.db.read() as connection:
                self._still_running(connection, release_id)
            stats = window_stats(self.instance.db, PROD, self.endpoint, self.deployment.name, started)
            failpoints.hit(f"release-watch-{percent}")
            judged, done = stats.requests >= self.config.min_requests, time.time() >= deadline
            breach = self._breach(stats, started, seconds) if judged else None
            if done and not judged and self.config.too_few_requests == "roll-back":
                breach = (
                    f"too few requests to judge ({stats.requests}, release.min_requests is "
                    f"{self.config.min_requests}; release.too_few_requests is roll-back)"
                )
            step = {
                "percent": percent,
                "seconds": round(time.time() - started, 1),
                **stats.to_dict(),
                "judged": judged,
                "breach": breach,
            }
            if breach or done:
                self.reporter.step(
                    f"watched {percent}%: {stats.requests} requests, "
                    f"{breach or ('no breach' if judged else 'too few requests to judge')}"
                )
                return step

    def _breach(self, stats: WindowStats, started: float, seconds: float) -> str | None:
        """What the figures of a step with enough requests to judge breach, if anything."""
        config = self.config
        if stats.error_rate > config.max_error_rate:
            return f"error rate {stats.error_rate:.1%} over {config.max_error_rate:.1%}"
        if stats.p99_ms is not None and stats.p99_ms > config.max_p99_ms:
            return f"p99 latency {stats.p99_ms:g} ms over {config.max_p99_ms:g} ms"
        before = self._refused_before(started, seconds)
        if before is not None and stats.rejected_rate - before > config.max_rejected_rise:
            return (
                f"{stats.rejected_rate:.1%} of requests refused (4xx) where {before:.1%} were before: a rise "
                f"over release.max_rejected_rise ({config.max_rejected_rise:.1%}), requests the live model "
                "took that this one refuses"
            )
        return None

    def _refused_before(self, started: float, seconds: float) -> float | None:
        """The share of its requests the deployment being replaced refused during the step's window, or,
        taking none of the traffic then, during as long a window before it; None where it had too few
        requests to tell (or there is none)."""
        if self.previous is None:
            return None
        stats = window_stats(self.instance.db, PROD, self.endpoint, self.previous.name, started)
        if stats.requests >= self.config.min_requests:
            return stats.rejected_rate
        if started not in self._refused_earlier:  # a past window: its figure does not change
            before = window_stats(
                self.instance.db, PROD, self.endpoint, self.previous.name, started - seconds, started
            )
            enough = before.requests >= self.config.min_requests
            self._refused_earlier[started] = before.rejected_rate if enough else None
        return self._refused_earlier[started]

    def _roll_back(self, release_id: int, step: dict[str, Any]) -> None:
        """Return the endpoint to the split it had before the release began; the alias does not move."""
        reason = f"canary breach at {step['percent']}%: {step['breach']}"
        before = self.before["traffic"]
        back = self.previous.name if self.previous is not None else "the deployments live before"

        def rolled_back(connection: Connection) -> None:
            self._still_running(connection, release_id)
            end_release(connection, release_id, ROLLED_BACK)
            audit.append(
                connection,
                RolledBack(
                    actor=self.instance.actor,
                    workspace=PROD,
                    model=self.model,
                    version=self.previous.version if self.previous else None,
                    git_commit=self.previous.git_commit if self.previous else None,
                    source=f"{self.endpoint}/{self.deployment.name}",
                    target=f"{self.endpoint}/{back}",
                    reason=reason,
                    outcome="automatic",
                    details={"from_commit": self.version.git_commit, "step": step, "traffic": before},
                ),
            )

        service.set_traffic(
            self.instance,
            self.endpoint,
            before,
            self.before["mirror"],
            reason=reason,
            workspace=PROD,
            also=rolled_back,
        )
        shown = " ".join(f"{k}={v}" for k, v in before.items())
        raise Refused(
            f"{reason}; traffic is back where it was before the release ({shown}) and the production "
            "alias did not move",
            details={"step": step},
        )

    def _finish(self) -> None:
        """Point the alias, record the release and end its progress (again after a crash: idempotent)."""
        registry.set_production(self.instance, self.version, self.previous.model if self.previous else None)
        history = release_history(self.instance, self.endpoint, PROD)
        recorded = bool(history) and history[-1].deployment == self.deployment.name
        deployed = service.get_endpoint(self.instance, self.endpoint, PROD).deployment(self.deployment.name)
        assert deployed is not None
        with self.instance.db.write() as connection:
            connection.execute(
                update(release_progress)
                .where(
                    release_progress.c.workspace == PROD,
                    release_progress.c.endpoint == self.endpoint,
                    release_progress.c.deployment == self.deployment.name,
                    release_progress.c.state == RUNNING,
                )
                .values(state=RELEASED, finished_at=utcnow())
            )
            if recorded:
                return
            record_release(
                connection, PROD, self.endpoint, deployed, "release", self.instance.actor, self.reason
            )
            audit.append(
                connection,
                Released(
                    actor=self.instance.actor,
                    workspace="prod",
                    model=self.model,
                    version=self.version.version,
                    git_commit=self.version.git_commit,
                    source=f"{self.endpoint}/{self.previous.name}" if self.previous else None,
                    target=f"{self.endpoint}/{self.deployment.name}",
                    reason=self.reason,
                    details={
                        "override": self.overridden,
                        "alias": PRODUCTION,
                        "validation_status": self.version.validation_status,
                        **(
                            {"breaking_change": {"change": self.broken, "reason": self.breaking_reason}}
                            if self.broken
                            else {}
                        ),
                    },
                ),
            )

    def _prune(self) -> None:
        """Keep the live deployment and the most recent earlier ones loaded; remove the rest."""
        order = [r.deployment for r in reversed(release_history(self.instance, self.endpoint, PROD))]
        keep = list(dict.fromkeys(order))[: self.config.keep_deployments]
        endpoint = service.get_endpoint(self.instance, self.endpoint, PROD)
        for deployment in endpoint.deployments:
            if (
                deployment.name not in keep
                and deployment.traffic == 0
                and deployment.name not in endpoint.mirror
            ):
                service.delete_deployment(self.instance, self.endpoint, deployment.name, PROD)

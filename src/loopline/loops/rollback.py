"""Returning an endpoint to an earlier model version, named by its commit (or the previous release)."""

from __future__ import annotations

from loopline import audit, registry
from loopline.domain import PRODUCTION, DeploymentInfo, EndpointInfo, ModelVersionInfo
from loopline.endpoints import service
from loopline.endpoints.client import lagging, live_server
from loopline.endpoints.releases import record_release, release_history
from loopline.errors import NotFound, Refused, UsageError
from loopline.events import RolledBack
from loopline.git import as_commit
from loopline.instance import Instance
from loopline.loops.batch_follow import follow
from loopline.loops.outer import (
    PROD,
    candidate_of,
    deploy,
    require_prod,
    smoke_test,
)
from loopline.loops.pending import PendingRelease, live_before, pending_release
from loopline.loops.release import ReleaseResult, abandon_pending
from loopline.loops.restore import held
from loopline.progress import NullReporter, Reporter
from loopline.state import locks
from loopline.versions import commit_version
from loopline.withdrawn import withdrawn_commits

__all__ = ["run_rollback"]


def _endpoint(instance: Instance, name: str, workspace: str, *, named: bool) -> EndpointInfo:
    """The endpoint to roll back; where none was named and prod's own does not exist yet, nothing was ever
    released, and the refusal says so."""
    try:
        return service.get_endpoint(instance, name, workspace)
    except NotFound:
        if named or workspace != PROD:
            raise
        raise NotFound(
            f"nothing has been released to prod yet (it has no endpoint {name}), so there is nothing "
            "to roll back; release a version first: `loopline outer-loop prod`"
        ) from None


def _moved_on(name: str, endpoint: str, live: DeploymentInfo | None, away_from: str) -> ReleaseResult:
    """Nothing done: the model a rollback was to leave no longer takes the endpoint's main traffic."""
    now = f"v{live.version} ({live.git_commit[:7]}) takes" if live else "no deployment takes"
    return ReleaseResult(
        name,
        live.git_commit if live else away_from,
        live.version if live else 0,
        endpoint,
        live.name if live else "",
        None,
        False,
        f"not rolled back: the decision was about {away_from[:7]}, and {now} {endpoint}'s traffic now; "
        "check it again (`loopline monitor check`)",
    )


def _kept(
    instance: Instance, name: str, endpoint: str, workspace: str, live: DeploymentInfo
) -> ReleaseResult | None:
    """Why a rollback a policy decided leaves the live model serving, where it does: the endpoint has no
    earlier release to return to, or its live model got there by a rollback, and the previous release is
    the model it was rolled back from, which a decision about the same drifting data would send it back
    to, and back again at the next check. None where the rollback goes ahead."""
    history = release_history(instance, endpoint, workspace)
    if all(r.git_commit == live.git_commit for r in history):
        why = (
            f"{endpoint} has no release before v{live.version} ({live.git_commit[:7]}) to return to; look "
            "at the signals (retrain, or release another version)"
        )
    elif history[-1].kind == "rollback" and history[-1].git_commit == live.git_commit:
        undone = next(r.git_commit for r in reversed(history) if r.git_commit != live.git_commit)
        why = (
            f"v{live.version} ({live.git_commit[:7]}) serves {endpoint} after a rollback from {undone[:7]}, "
            "which the previous release would return to; choose a version by hand "
            "(`loopline rollback --commit SHA`)"
        )
    else:
        return None
    return ReleaseResult(
        name, live.git_commit, live.version, endpoint, live.name, None, False, f"not rolled back: {why}"
    )


class _TakeOver:
    """Called while a release holds the endpoint: ends that release, so that this rollback goes ahead now
    rather than wait for the release's canary to finish watching. The release stops at its next traffic
    change or watch poll (within a second) and frees the endpoint. The commit named is looked up first, so
    a rollback that would be refused stops nothing."""

    def __init__(
        self,
        instance: Instance,
        workspace: str,
        endpoint: str,
        name: str,
        commit: str | None,
        reporter: Reporter,
    ) -> None:
        self.instance, self.workspace, self.endpoint = instance, workspace, endpoint
        self.name, self.commit, self.reporter = name, commit, reporter
        self.stopped: PendingRelease | None = None  # the release this rollback ended

    def __call__(self) -> None:
        if self.stopped is not None:
            return
        pending = pending_release(self.instance, self.workspace, self.endpoint)
        if pending is None:  # the holder has not begun moving traffic yet, or is another rollback
            return
        if self.commit is not None:
            _version_of(self.instance, self.workspace, self.endpoint, self.name, self.commit, NullReporter())
        how = (
            f"rollback to {self.commit[:12]}"
            if self.commit is not None
            else "rollback to the previous release"
        )
        with self.instance.db.write() as connection:
            abandon_pending(connection, self.workspace, self.endpoint, self.instance.actor, how)
        self.stopped = pending
        self.reporter.step(
            f"stopping the release of {pending.model} v{pending.version} ({pending.git_commit[:7]}) in "
            f"progress: this rollback takes {self.endpoint} over"
        )

    def unfinished(self) -> PendingRelease | None:
        """The release this rollback ended, else one a crash left unfinished."""
        return self.stopped or pending_release(self.instance, self.workspace, self.endpoint)

    def details(self) -> dict[str, str]:
        """What the audit event says of the release ended."""
        return {"stopped_release": self.stopped.git_commit} if self.stopped else {}


def _target(
    instance: Instance,
    workspace: str,
    endpoint: str,
    name: str,
    commit: str | None,
    previous: bool,
    live_commit: str | None,
    reporter: Reporter,
    stopped: PendingRelease | None = None,
) -> ModelVersionInfo:
    """The version of ``workspace`` to return to. A commit without a version of its own there that changed
    none of ``training.paths`` since its newest ancestor with one (a merge elsewhere in the repository)
    takes that ancestor's version, as the outer loops do. ``--previous`` over a release that did not end
    (``stopped``) returns to what was live before that release."""
    before = live_before(instance, endpoint, stopped) if previous and stopped is not None else None
    if before is not None:
        name, commit = before.model, before.git_commit
    elif previous:
        history = release_history(instance, endpoint, workspace)
        earlier = [r for r in reversed(history) if r.git_commit != live_commit]
        if not earlier:
            raise NotFound(f"endpoint '{endpoint}' has no earlier release to return to")
        withdrawn = withdrawn_commits(instance.db)
        kept = [r for r in earlier if (r.model, r.git_commit) not in withdrawn]
        if not kept:
            raise Refused(
                f"every earlier release of endpoint '{endpoint}' is withdrawn; name a version with "
                "--commit, or reinstate one (`loopline withdrawals` lists them)"
            )
        if kept[0] is not earlier[0]:
            reporter.step(f"passing over {earlier[0].git_commit[:7]}: withdrawn (`loopline withdrawals`)")
        name, commit = kept[0].model, kept[0].git_commit
    assert commit is not None
    return _version_of(instance, workspace, endpoint, name, commit, reporter)


def _version_of(
    instance: Instance, workspace: str, endpoint: str, name: str, commit: str, reporter: Reporter
) -> ModelVersionInfo:
    """``workspace``'s version of ``name`` from ``commit``; where it has none, the version the endpoint
    released from that commit under another name (``model.name`` changed since)."""
    try:
        return commit_version(instance, name, commit, reporter, workspace)
    except NotFound:
        sha = as_commit(instance.root, commit)
        released = [
            r
            for r in reversed(release_history(instance, endpoint, workspace))
            if r.git_commit.startswith(sha) and r.model != name
        ]
        if not released:
            raise
        return commit_version(instance, released[0].model, released[0].git_commit, reporter, workspace)


def run_rollback(
    instance: Instance,
    *,
    commit: str | None = None,
    previous: bool = False,
    endpoint: str | None = None,
    model: str | None = None,
    reason: str | None = None,
    reporter: Reporter | None = None,
    workspace: str = "prod",
    away_from: str | None = None,
) -> ReleaseResult:
    """Move all of an endpoint's traffic (default: the prod endpoint) back to the version of ``commit`` (or
    the previous release); with ``away_from``, only while that commit's deployment takes the main traffic
    (a decision about one model never rolls back the one released after it)."""
    report_to = reporter or NullReporter()
    if (commit is None) == (not previous):
        raise UsageError("name the version to return to with exactly one of --commit SHA or --previous")
    require_prod(instance, "model rollback")
    instance.db.require_current(instance.root)
    name = instance.model_name(model)
    endpoint_name = endpoint or instance.settings.prod_endpoint
    instance.require_workspace(workspace)
    take_over = _TakeOver(instance, workspace, endpoint_name, name, commit, report_to)
    # While a release holds the endpoint, a rollback by a person stops it and goes ahead (one a policy
    # decided waits for it to end).
    with locks.hold(
        instance.db,
        f"release:{workspace}:{endpoint_name}",
        instance.actor,
        waiting=None if away_from else take_over,
    ):
        info = _endpoint(instance, endpoint_name, workspace, named=endpoint is not None)
        live = info.main_deployment()
        if away_from is not None and (live is None or live.git_commit != away_from):
            return _moved_on(name, endpoint_name, live, away_from)
        if (
            away_from is not None
            and live is not None
            and (kept := _kept(instance, name, endpoint_name, workspace, live))
        ):
            return kept
        target = _target(
            instance,
            workspace,
            endpoint_name,
            name,
            commit,
            previous,
            live.git_commit if live else None,
            report_to,
            take_over.unfinished(),
        )
        target = held(instance, target, report_to)
        name = target.name  # the endpoint's earlier model, where model.name changed since
        result = ReleaseResult(
            name, target.git_commit, target.version, endpoint_name, "", None, False, "", reason=reason
        )
        if live is not None:
            result.previous = {
                "deployment": live.name,
                "version": live.version,
                "git_commit": live.git_commit,
            }
        if live is not None and live.git_commit == target.git_commit and live.traffic == 100:
            result.deployment = live.name
            result.message = f"{target.git_commit[:7]} is already live on {endpoint_name}; nothing to do"
            if info.workspace == PROD and PRODUCTION not in target.aliases:  # a rollback cut short
                registry.set_alias(instance, target, PRODUCTION)
            follow(instance, result, target, f"follows the rollback to {target.git_commit[:7]}", report_to)
            return result
        deployment = deploy(instance, info, target, report_to)
        result.deployment = deployment.name
        with live_server(instance, info.workspace) as server:
            if server.temporary:
                report_to.step(f"{server.why}; checking on a temporary one")
            report_to.step(f"checking that {deployment.name} answers")
            smoke_test(instance, server.client, candidate_of(instance, endpoint_name, deployment, target))
            service.set_traffic(
                instance,
                endpoint_name,
                {deployment.name: 100},
                reason=reason or "rollback",
                workspace=workspace,
                also=lambda connection: abandon_pending(
                    connection, workspace, endpoint_name, instance.actor, f"rollback to {deployment.name}"
                ),
            )
            result.temporary_server = server.temporary
            if not server.client.follows(endpoint_name, {deployment.name: 100}):
                report_to.step(lagging(server.client.base_url))
        report_to.step(f"all traffic on {deployment.name}")
        moved = service.get_endpoint(instance, endpoint_name, workspace).deployment(deployment.name)
        assert moved is not None
        with instance.db.write() as connection:
            record_release(connection, workspace, endpoint_name, moved, "rollback", instance.actor, reason)
            audit.append(
                connection,
                RolledBack(
                    actor=instance.actor,
                    workspace=info.workspace,
                    model=name,
                    version=target.version,
                    git_commit=target.git_commit,
                    source=f"{endpoint_name}/{live.name}" if live else None,
                    target=f"{endpoint_name}/{deployment.name}",
                    reason=reason,
                    details={
                        "from_commit": live.git_commit if live else None,
                        "to_commit": target.git_commit,
                        **take_over.details(),
                    },
                ),
            )
        if info.workspace == PROD:
            registry.set_production(instance, target, live.model if live else None)
        result.changed = True
        result.message = (
            f"rolled {endpoint_name} back to {name} v{target.version} ({target.git_commit[:7]})"
            + (f" from {live.git_commit[:7]}" if live else "")
        )
        follow(instance, result, target, f"follows the rollback to {target.git_commit[:7]}", report_to)
        return result

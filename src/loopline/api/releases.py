"""The SDK: the outer loops, rollback, validation reports and releases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.api._common import PathLike, commit_filter, endpoint_workspace, provisioned
from loopline.api.results import ValidationReport
from loopline.domain import SHARED
from loopline.errors import NotFound
from loopline.instance import Instance

if TYPE_CHECKING:
    from loopline.endpoints.releases import ReleaseRecord
    from loopline.loops.approvals import Approval, ApprovalState
    from loopline.loops.outer import TestResult
    from loopline.loops.release import ReleaseResult
    from loopline.progress import Reporter
    from loopline.withdrawn import Withdrawal


def outer_loop_test(
    project: PathLike | None = None,
    *,
    commit: str | None = None,
    model: str | None = None,
    reporter: Reporter | None = None,
) -> TestResult:
    """Validate a commit's registry version in the test workspace (full tier); raise GateFailed on failure."""
    from loopline.loops.outer import run_outer_loop_test

    return run_outer_loop_test(Instance.open(project), commit=commit, model=model, reporter=reporter)


def outer_loop_prod(
    project: PathLike | None = None,
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
    """Release a commit's registry version to prod, at once or in watched canary steps; where releases
    need approvals (``release.approvals``), wait up to ``approval_wait`` seconds for them, then refuse. A
    version that would break the live one's clients (a column they do not send, answers of another form,
    labels renamed) is refused unless ``breaking_change`` says why it goes live."""
    from loopline.loops.release import run_outer_loop_prod

    return run_outer_loop_prod(
        Instance.open(project),
        commit=commit,
        model=model,
        canary=canary,
        watch=watch,
        override_reason=override_reason,
        approval_wait=approval_wait,
        breaking_change=breaking_change,
        reporter=reporter,
    )


def _subject(instance: Instance, commit: str | None, model: str | None, retire: str | None) -> Any:
    from loopline.loops import approvals
    from loopline.loops.outer import registry_version

    if retire is not None:
        return approvals.retirement(instance, retire)
    return registry_version(instance, instance.model_name(model), commit)


def approve(
    commit: str | None = None,
    *,
    reason: str,
    deny: bool = False,
    model: str | None = None,
    retire: str | None = None,
    project: PathLike | None = None,
) -> Approval:
    """Approve (or ``deny``) releasing a commit's registry version (default: HEAD's) to prod, or with
    ``retire`` retiring that prod endpoint, as the acting user: an approver of ``release.approvals`` who
    did not ask for it. The approval holds for that version and the validation it saw (or that endpoint),
    until ``release.approvals.expires_after``."""
    from loopline.loops import approvals

    instance = provisioned(project)
    subject = _subject(instance, commit, model, retire)
    return approvals.decide(instance, subject, reason=reason, decision="denied" if deny else "approved")


def approvals(
    commit: str | None = None,
    *,
    model: str | None = None,
    retire: str | None = None,
    project: PathLike | None = None,
) -> ApprovalState:
    """Where the release of a commit's registry version (default: HEAD's) to prod, or with ``retire`` the
    retirement of that prod endpoint, stands: approvals needed and standing, who asked."""
    from loopline.loops import approvals as approving

    instance = provisioned(project)
    return approving.approval_state(instance, _subject(instance, commit, model, retire))


def withdraw(
    commit: str | None = None, *, reason: str, model: str | None = None, project: PathLike | None = None
) -> Withdrawal:
    """Withdraw a commit's model version (default: HEAD's) in every workspace: no release, promotion,
    deployment or rollback takes it again until it is reinstated. What is live stays live: roll it back."""
    return _decide(project, commit, model, reason, "withdrawn")


def reinstate(
    commit: str | None = None, *, reason: str, model: str | None = None, project: PathLike | None = None
) -> Withdrawal:
    """Reinstate a withdrawn version (default: HEAD's): releases, deployments and rollbacks take it again."""
    return _decide(project, commit, model, reason, "reinstated")


def _decide(
    project: PathLike | None, commit: str | None, model: str | None, reason: str, action: str
) -> Withdrawal:
    from loopline import registry, withdrawn
    from loopline.loops.outer import registry_version

    instance = provisioned(project)
    name = instance.model_name(model)
    version = registry_version(instance, name, commit, withdrawn_ok=True)

    def mirror(now: str | None, before: str | None) -> None:
        registry.mark_withdrawn(instance, version, now, before)

    return withdrawn.decide(
        instance.db, version, action=action, reason=reason, actor=instance.actor, mirror=mirror
    )


def withdrawals(*, model: str | None = None, project: PathLike | None = None) -> list[Withdrawal]:
    """Every withdrawal and reinstatement, newest first (of ``model`` only, where given)."""
    from loopline import withdrawn

    return withdrawn.decisions(provisioned(project).db, model)


def approval_requests(*, limit: int = 20, project: PathLike | None = None) -> list[ApprovalState]:
    """The releases to prod asked for most recently (one per version, newest first) and where each
    stands: waiting, approved or denied."""
    from loopline.loops import approvals as approving

    return approving.waiting(provisioned(project), limit)


def rollback(
    project: PathLike | None = None,
    *,
    commit: str | None = None,
    previous: bool = False,
    endpoint: str | None = None,
    workspace: str | None = None,
    model: str | None = None,
    reason: str | None = None,
    reporter: Reporter | None = None,
) -> ReleaseResult:
    """Return prod (or ``endpoint``) to the version of ``commit``, or to the previous release; a release of
    the endpoint in progress is stopped first (``previous`` then returns to what was live before it)."""
    from loopline.loops.rollback import run_rollback

    instance = Instance.open(project)
    return run_rollback(
        instance,
        commit=commit,
        previous=previous,
        endpoint=endpoint,
        model=model,
        reason=reason,
        reporter=reporter,
        workspace=endpoint_workspace(instance, endpoint, workspace),
    )


def validation_report(commit: str | None = None, *, project: PathLike | None = None) -> ValidationReport:
    """The newest validation report of a commit (a prefix; default HEAD), from the shared registry's store."""
    import json

    from loopline import audit
    from loopline.git import resolve_commit
    from loopline.loops.outer import registry_version
    from loopline.mlflow_migrate import artifact_now

    instance = provisioned(project)
    asked, commit = commit, commit_filter(instance, commit) or resolve_commit(instance.root, "HEAD")
    found = audit.query(instance.db, commit=commit, kind="gate-evaluated", workspace="test", limit=1)
    if not found:
        # The outer loops take an ancestor's version for a commit that changed none of training.paths (or,
        # without --commit, only configuration): its report is that version's.
        try:
            name = instance.settings.config.model.name
            taken = registry_version(instance, name, asked, withdrawn_ok=True).git_commit
        except NotFound:
            taken = None
        if taken and not taken.startswith(commit):
            found = audit.query(instance.db, commit=taken, kind="gate-evaluated", workspace="test", limit=1)
    uri = found[0].event.details.get("report_uri") if found else None
    if not found or not uri:
        raise NotFound(
            f"commit {commit} has no validation report; run `loopline outer-loop test --commit {commit}`"
        )
    event = found[0].event
    store = instance.store(SHARED)
    uri = artifact_now(instance.db, SHARED, uri)
    markdown = store.read_text(uri)
    data = json.loads(store.read_text(uri.removesuffix(".md") + ".json"))
    return ValidationReport(
        git_commit=event.git_commit or commit,
        model=event.model or "",
        version=event.version,
        outcome=event.outcome,
        uri=uri,
        markdown=markdown,
        data=data,
    )


def releases(
    endpoint: str | None = None, *, workspace: str | None = None, project: PathLike | None = None
) -> list[ReleaseRecord]:
    """An endpoint's release history (default: the prod endpoint), oldest first."""
    from loopline.endpoints.releases import release_history

    instance = provisioned(project)
    where = endpoint_workspace(instance, endpoint, workspace)
    return release_history(instance, endpoint or instance.settings.prod_endpoint, where)

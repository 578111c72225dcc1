"""The outer loops: validate a commit's model in the test workspace, release it to prod, return.

Every step is idempotent and each leaves the stores consistent: a copy is registered only when its files
are complete and verified, a deployment is created at 0% and smoke-tested through the endpoint before
traffic moves, and a rerun after a crash finds what was done and finishes the rest. Releases and
rollbacks of one endpoint hold a lock in loopline's database, so two of them never interleave.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from typing import Any

from loopline import audit, catalog, registry
from loopline.domain import (
    SHARED,
    DeploymentInfo,
    EndpointInfo,
    ModelVersionInfo,
    Tier,
    utcnow,
)
from loopline.endpoints import service
from loopline.endpoints.client import EXAMPLE, EndpointClient, live_server
from loopline.endpoints.deployments import repin
from loopline.errors import GateFailed, InvalidReference, NotFound, NotProvisioned, Refused, TierDisabled
from loopline.events import GateEvaluated, Promoted, RefusedAttempt
from loopline.git import (
    SHALLOW_HINT,
    ancestors,
    as_commit,
    is_shallow,
    resolve_commit,
)
from loopline.instance import Instance
from loopline.loops.restore import held
from loopline.model_environment import warning
from loopline.progress import NullReporter, Reporter
from loopline.smoke import smoke_request
from loopline.state import locks
from loopline.storage.datastores import text_columns
from loopline.validation import Candidate, heldout_for, validate
from loopline.versions import commit_version, model_name_at
from loopline.withdrawn import refuse_withdrawn

__all__ = ["TestResult", "run_outer_loop_test"]

TEST, PROD = "test", "prod"


def deployment_name(version: ModelVersionInfo) -> str:
    """A deployment's name from its version and commit: ``v3-3f2a9c1``."""
    return f"v{version.version}-{version.git_commit[:7]}"


def registry_version(
    instance: Instance,
    name: str,
    commit: str | None,
    reporter: Reporter | None = None,
    *,
    withdrawn_ok: bool = False,
) -> ModelVersionInfo:
    """The shared registry's version of ``name`` from ``commit`` (a prefix of 7+).

    Without a commit: HEAD's version, or, when HEAD has none (a commit that changed only configuration or
    documentation), the version of HEAD's newest ancestor that has one. A commit with no version of its
    own that changed none of ``training.paths`` since its newest ancestor with one (a merge elsewhere in a
    larger repository, which the inner loop did not train) takes that ancestor's version, as the inner
    loop did. A withdrawn version is refused, unless ``withdrawn_ok``.
    """
    report = reporter or NullReporter()
    if commit is not None:
        try:
            return commit_version(instance, name, commit, report, withdrawn_ok=withdrawn_ok)
        except NotFound:
            renamed = _renamed(instance, name, commit)
            if renamed is None:
                raise
            full, earlier = renamed
            report.step(
                f"{full[:7]} registered the model as '{earlier}' (model.name then); taking its version"
            )
            return commit_version(instance, earlier, full, report, withdrawn_ok=withdrawn_ok)
    full = _newest_registered(instance, name, report)
    try:
        found = catalog.version_for_commit(instance.db, SHARED, name, full)
    except NotFound:
        hint = SHALLOW_HINT if is_shallow(instance.root) else "run `loopline inner-loop` at that commit first"
        raise NotFound(
            f"commit {full[:7]} has no version of '{name}' in the shared registry; {hint}"
        ) from None
    return found if withdrawn_ok else refuse_withdrawn(instance.db, found)


def _renamed(instance: Instance, name: str, commit: str) -> tuple[str, str] | None:
    """``commit`` as a full SHA and the model's name there, where ``model.name`` changed since and ``name``
    is today's: a commit from before the rename registered its version under the name it had then."""
    if name != instance.settings.config.model.name:  # another model, named on purpose
        return None
    try:
        full = resolve_commit(instance.root, as_commit(instance.root, commit))
    except InvalidReference:
        return None
    then = model_name_at(instance, full)
    return (full, then) if then is not None and then != name else None


def _registered(instance: Instance, name: str) -> set[str]:
    """The commits with a version of ``name`` in the shared registry."""
    return {v.git_commit for v in catalog.list_versions(instance.db, workspace=SHARED, name=name)}


def _newest_registered(instance: Instance, name: str, reporter: Reporter) -> str:
    """HEAD, or its newest ancestor with a version of ``name`` in the shared registry."""
    head = resolve_commit(instance.root, "HEAD")
    registered = _registered(instance, name)
    if head in registered or not registered:
        return head
    for back, ancestor in enumerate(ancestors(instance.root, head), start=1):
        if ancestor in registered:
            reporter.step(
                f"HEAD {head[:7]} has no version of {name} in the registry; taking its newest ancestor "
                f"that has one, {ancestor[:7]} ({back} commit{'s' if back > 1 else ''} back)"
            )
            return ancestor
    return head


def promote(
    instance: Instance, source: ModelVersionInfo, workspace: str, reporter: Reporter | None = None
) -> ModelVersionInfo:
    """Copy ``source`` into ``workspace`` once: running it again returns the copy it made (registered in
    the workspace's MLflow again if someone deleted it there)."""
    lock = f"promote:{workspace}:{source.name}:{source.content_digest}"
    with locks.hold(instance.db, lock, instance.actor):
        copies = [
            v
            for v in catalog.list_versions(
                instance.db, workspace=workspace, name=source.name, commit=source.git_commit
            )
            if v.content_digest == source.content_digest
        ]
        if copies:
            return held(instance, copies[-1], reporter)
        recovered = registry.find(instance, workspace, source.name, source.git_commit, source.diff_digest)
        if recovered is not None and recovered.content_digest == source.content_digest:
            return recovered
        return registry.copy_version(instance, source, workspace, Promoted)


def deploy(
    instance: Instance,
    endpoint: EndpointInfo,
    version: ModelVersionInfo,
    report_to: Reporter,
    traffic: int | None = None,
) -> DeploymentInfo:
    """The endpoint's deployment of ``version``: reused when one serves the same files, else created with
    ``traffic`` (the endpoint's first deployment takes all of it unless that is 0), and told where the
    model's requirements differ from the packages here."""
    for deployment in endpoint.deployments:
        if deployment.model == version.name and deployment.content_digest == version.content_digest:
            if deployment.version != version.version and deployment.git_commit == version.git_commit:
                # the commit's files came back under another number (see loops/restore.py)
                with instance.db.write() as connection:
                    repin(connection, version, deployment.version)
                return replace(deployment, version=version.version)
            return deployment
    updated = service.create_deployment(
        instance,
        endpoint.name,
        deployment_name(version),
        version.name,
        version=version.version,
        traffic=traffic,
        workspace=endpoint.workspace,
    )
    created = updated.deployment(deployment_name(version))
    assert created is not None
    if created.environment:
        report_to.step(warning(f"{endpoint.name}/{created.name}", created.environment))
    return created


def candidate_of(
    instance: Instance, endpoint: str, deployment: DeploymentInfo, version: ModelVersionInfo
) -> Candidate:
    return Candidate(
        endpoint,
        deployment.name,
        version.name,
        version.version,
        version.git_commit,
        instance.model_store_holding(version).verify(version.content_digest),
    )


@dataclass(frozen=True)
class Smoked:
    """The request a smoke test sent, and the deployment's answer to it."""

    payload: Any
    route: str
    answer: Any


def smoke_test(instance: Instance, client: EndpointClient, candidate: Candidate) -> Smoked | None:
    """Answer the model's input example (or, logged without one, rows of the project's data: see
    ``smoke_request``) through the endpoint, naming the deployment; refuse otherwise. What was sent and
    answered; None where the model has no example and the project no rows for it."""
    example = smoke_request(instance, candidate.folder)
    client.wait_ready(candidate.endpoint, candidate.deployment)
    if example is None:
        return None
    result = client.score(
        candidate.endpoint, example.payload, deployment=candidate.deployment, route=example.route
    )
    if not result.ok:
        message = result.body.get("message") if isinstance(result.body, dict) else result.body
        sent = "" if example.source == EXAMPLE else f" (on {example.source})"
        raise Refused(
            f"the smoke test of deployment '{candidate.deployment}' failed{sent}: {result.status} {message}"
        )
    return Smoked(example.payload, example.route, result.body)


@dataclass(frozen=True)
class TestResult:
    """What ``outer-loop test`` found for one commit."""

    model: str
    git_commit: str
    registry_version: int
    test_version: int
    endpoint: str
    deployment: str
    passed: bool
    report: dict[str, Any]
    report_markdown: str
    report_uri: str
    temporary_server: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "model": self.model,
            "git_commit": self.git_commit,
            "registry_version": self.registry_version,
            "test_version": self.test_version,
            "endpoint": self.endpoint,
            "deployment": self.deployment,
            "passed": self.passed,
            "validation_status": "passed" if self.passed else "failed",
            "report_uri": self.report_uri,
            "report": self.report,
            "temporary_server": self.temporary_server,
            "message": self.message,
        }


def require_tier(instance: Instance, what: str, tiers: set[Tier], hint: str) -> None:
    tier = instance.settings.tier
    if tier not in tiers:
        error = TierDisabled(what=what, tier=tier.value, hint=hint)
        with contextlib.suppress(NotProvisioned):  # before `loopline up` there is no log to record it in
            audit.record(
                instance.db,
                RefusedAttempt(actor=instance.actor, reason=error.message, details={"step": what}),
            )
        raise error


def require_prod(instance: Instance, what: str) -> None:
    """Refuse ``what`` (audited) in the experimentation tier, which has no prod workspace."""
    require_tier(
        instance,
        what,
        {Tier.SIMPLE, Tier.FULL},
        "the experimentation tier has no prod workspace; move to one that has (`loopline tier set simple`, "
        "or `full`)",
    )


def _champion(instance: Instance, name: str) -> ModelVersionInfo | None:
    """The prod model that takes main traffic now, as the shared registry knows it."""
    try:
        endpoint = service.get_endpoint(instance, instance.settings.prod_endpoint, PROD)
    except NotFound:
        return None
    live = endpoint.main_deployment()
    if live is None or live.model != name:
        return None
    try:
        return registry_version(instance, name, live.git_commit)
    except NotFound:
        return None


def _write_report(
    instance: Instance, version: ModelVersionInfo, report: dict[str, Any], markdown: str
) -> str:
    """Write the report in a folder of its own (a validation of the same version again keeps the earlier
    report, which its audit event names); its Markdown's URI."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    folder = instance.store(SHARED).write_artifacts(
        f"validation/{version.name}/v{version.version}/{stamp}",
        {"report.json": json.dumps(report, indent=2, default=str), "report.md": markdown},
    )
    return f"{folder}/report.md"


def run_outer_loop_test(
    instance: Instance,
    *,
    commit: str | None = None,
    model: str | None = None,
    reporter: Reporter | None = None,
) -> TestResult:
    """Copy a commit's registry version into test, deploy it, validate it through the endpoint."""
    report_to = reporter or NullReporter()
    require_tier(
        instance,
        "outer-loop test",
        {Tier.FULL},
        "it runs in the full tier (dev, test, prod); move to it with `loopline tier set full`",
    )
    instance.db.require_current(instance.root)
    asked = instance.model_name(model)
    candidate = held(instance, registry_version(instance, asked, commit, report_to), report_to)
    name = candidate.name  # the name it had at its commit, where model.name changed since
    report_to.step(f"validating {name} v{candidate.version} from {candidate.git_commit[:7]} in test")
    # The held-out rows first: without them (unless validation.command measures) nothing is copied,
    # deployed or started.
    files = instance.model_store_holding(candidate).verify(candidate.content_digest)
    validation = instance.settings.config.validation
    heldout = heldout_for(instance, validation, text_columns(files, validation.label_columns))
    with locks.hold(instance.db, f"outer-loop-test:{asked}", instance.actor):
        endpoint = service.ensure_endpoint(instance, instance.settings.test_endpoint, TEST)
        in_test = promote(instance, candidate, TEST, report_to)
        deployment = deploy(instance, endpoint, in_test, report_to)
        champion = _champion(instance, asked)
        champion_deployment = None
        if champion is not None:
            champion_in_test = promote(instance, champion, TEST, report_to)
            champion_deployment = deploy(
                instance, service.get_endpoint(instance, endpoint.name, TEST), champion_in_test, report_to
            )
        service.set_traffic(instance, endpoint.name, {deployment.name: 100}, {}, workspace=TEST)
        _tidy(
            instance,
            endpoint.name,
            {deployment.name} | ({champion_deployment.name} if champion_deployment else set()),
        )
        with live_server(instance, TEST) as live:
            if live.temporary:
                report_to.step(f"{live.why}; started a temporary one")
            target = candidate_of(instance, endpoint.name, deployment, in_test)
            live.client.wait_ready(endpoint.name, deployment.name)
            rival = None
            if champion is not None and champion_deployment is not None:
                live.client.wait_ready(endpoint.name, champion_deployment.name)
                rival = candidate_of(instance, endpoint.name, champion_deployment, champion)
            report = validate(
                live.client,
                target,
                rival,
                instance,
                instance.settings.config.validation,
                heldout,
                report_to,
            )
            report.candidate["registry_version"] = candidate.version
        status = "passed" if report.passed else "failed"
        report_uri = _write_report(instance, candidate, report.to_dict(), report.markdown())
        registry.set_validation(instance, candidate, status, report_uri)
        registry.set_validation(instance, in_test, status, report_uri)
        audit.record(
            instance.db,
            GateEvaluated(
                actor=instance.actor,
                workspace="test",
                model=name,
                version=candidate.version,
                git_commit=candidate.git_commit,
                outcome=status,
                target=f"{SHARED}/{name}/{candidate.version}",
                details={
                    "stage": "outer-loop-test",
                    "report_uri": report_uri,
                    "failures": report.failures,
                    "metrics": report.metrics,
                },
            ),
        )
    result = TestResult(
        model=name,
        git_commit=candidate.git_commit,
        registry_version=candidate.version,
        test_version=in_test.version,
        endpoint=endpoint.name,
        deployment=deployment.name,
        passed=report.passed,
        report=report.to_dict(),
        report_markdown=report.markdown(),
        report_uri=report_uri,
        temporary_server=live.temporary,
        message=f"{name} v{candidate.version} ({candidate.git_commit[:7]}) {status} validation in test",
    )
    if not report.passed:
        raise GateFailed(
            f"validation failed: {'; '.join(report.failures)}; {name} v{candidate.version} is marked "
            "validation_status=failed in the registry and prod is untouched",
            details={"result": result.to_dict()},
        )
    return result


def _tidy(instance: Instance, endpoint: str, keep: set[str]) -> None:
    """Remove the test endpoint's deployments that take no traffic and are not kept."""
    for deployment in service.get_endpoint(instance, endpoint, TEST).deployments:
        if deployment.name not in keep and deployment.traffic == 0:
            service.delete_deployment(instance, endpoint, deployment.name, TEST)

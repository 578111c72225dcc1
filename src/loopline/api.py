"""The SDK: every CLI command is one call of a function here, and each returns a value.

The functions run here, in this process; ``loopline.connect(url, token)`` runs the same ones on a control
plane, and the operation table (``operations.py``) says which may, under which name and rule.

import loopline
loopline.up(project="my-project")
result = loopline.inner_loop(project="my-project")
print(result.shared.version, result.git_commit)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import DATASTORES, redact
from loopline.domain import SHARED, EndpointInfo, ModelVersionInfo, Tier
from loopline.errors import NotFound, UsageError, shorten
from loopline.instance import Instance
from loopline.state import HEAD_REVISION

if TYPE_CHECKING:
    # Services load on first use, so a quick command such as `status` imports only what it needs; the
    # wire codec (remote/codec.py) resolves these names from this block when it needs them.
    from loopline.access import TokenInfo, UserInfo
    from loopline.audit import AuditRecord, Verification
    from loopline.batch.jobs import BatchJob
    from loopline.batch.service import BatchEndpoint, DefaultChange
    from loopline.data import DataAsset
    from loopline.endpoints.client import InvokeResult
    from loopline.endpoints.service import ReleaseRecord
    from loopline.loops.inner import InnerLoopResult
    from loopline.loops.outer import TestResult
    from loopline.loops.release import ReleaseResult
    from loopline.monitoring.check import CheckResult
    from loopline.monitoring.policy import Decision
    from loopline.onboard import Onboarded
    from loopline.progress import Reporter
    from loopline.provision import UpResult
    from loopline.scaffold import InitResult
    from loopline.state.locks import LockInfo
    from loopline.state.migrate import MigrationResult
    from loopline.tiers import TierChange
    from loopline.workflows.files import WorkflowSwitch
    from loopline.workflows.runner import WorkflowRun

__all__ = [
    "EndpointKeys",
    "EndpointMetrics",
    "NewEndpoint",
    "Status",
    "ValidationReport",
    "WorkspaceInfo",
    "audit_checkpoint",
    "audit_verify",
    "batch_invoke",
    "batch_job",
    "batch_jobs",
    "batch_promote",
    "batch_resume",
    "batch_rollback",
    "create_batch_deployment",
    "create_batch_endpoint",
    "create_deployment",
    "create_endpoint",
    "delete_deployment",
    "delete_endpoint",
    "endpoint_keys",
    "endpoint_metrics",
    "get_batch_endpoint",
    "get_data",
    "get_endpoint",
    "history",
    "import_inner_loop",
    "init",
    "init_existing",
    "inner_loop",
    "invoke_endpoint",
    "latest_check",
    "list_batch_endpoints",
    "list_data",
    "list_endpoints",
    "list_locks",
    "migrate_state",
    "monitor_check",
    "outer_loop_prod",
    "outer_loop_test",
    "policy_evaluate",
    "register_data",
    "releases",
    "rollback",
    "set_tier",
    "set_traffic",
    "status",
    "token_create",
    "token_list",
    "token_revoke",
    "unlock",
    "up",
    "update_endpoint",
    "use_workspace",
    "user_add",
    "user_grant",
    "user_list",
    "validation_report",
    "workflow_enabled",
    "workflow_list",
    "workflow_run",
]

PathLike = str | os.PathLike[str]


def _tier(value: str | Tier) -> Tier:
    try:
        return Tier(value)
    except ValueError:
        raise UsageError(
            f"tier '{value}' does not exist; use one of {', '.join(t.value for t in Tier)}"
        ) from None


def init(
    path: PathLike,
    tier: str | Tier = Tier.SIMPLE,
    *,
    project: str | None = None,
    model: str | None = None,
    git: bool = True,
) -> InitResult:
    """Write a runnable sample project into a new or empty folder."""
    from loopline.scaffold import init_project

    return init_project(Path(path), _tier(tier), project=project, model=model, git=git)


def init_existing(
    path: PathLike = ".",
    tier: str | Tier = Tier.SIMPLE,
    *,
    project: str | None = None,
    model: str | None = None,
    command: str | None = None,
) -> Onboarded:
    """Set up loopline in a repository that already trains with MLflow: find the entry point, run it once,
    write loopline.yaml, a gate and the workflow files (never overwriting a file)."""
    from loopline.onboard import onboard

    return onboard(Path(path), _tier(tier), project=project, model=model, command=command)


def up(project: PathLike | None = None, *, reporter: Reporter | None = None) -> UpResult:
    """Create the tier's workspaces, the shared registry and the datastores; idempotent."""
    from loopline.provision import provision

    return provision(Instance.open(project), reporter)


def inner_loop(
    project: PathLike | None = None,
    *,
    model: str | None = None,
    allow_dirty: bool = False,
    reporter: Reporter | None = None,
) -> InnerLoopResult:
    """Train at the current commit, check the gate, register in dev and share to the registry.

    In a GitHub Actions job allowed ``id-token: write``, the job's OIDC token goes with the run as its
    attestation (see ``registry.require``)."""
    from loopline.attestation import request_token
    from loopline.loops.inner import run_inner_loop

    instance = Instance.open(project)
    return run_inner_loop(
        instance,
        model=model,
        allow_dirty=allow_dirty,
        reporter=reporter,
        attestation=request_token(instance.settings.config.registry.attestation.audience),
    )


@dataclass(frozen=True)
class Status:
    """Where everything of an instance stands."""

    project: str
    root: Path
    tier: Tier
    workspaces: tuple[str, ...]
    provisioned: bool
    stores: dict[str, dict[str, str]]
    datastores: dict[str, str]
    state_url: str
    models: tuple[ModelVersionInfo, ...]
    endpoints: tuple[dict[str, Any], ...] = field(default=())
    repository_url: str | None = None
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``loopline status --json`` prints."""
        return {
            "project": self.project,
            "root": str(self.root),
            "tier": self.tier.value,
            "workspaces": list(self.workspaces),
            "registry": SHARED,
            "provisioned": self.provisioned,
            "stores": self.stores,
            "datastores": self.datastores,
            "state_url": self.state_url,
            "models": [m.to_dict() for m in self.models],
            "endpoints": list(self.endpoints),
            "repository_url": self.repository_url,
            "model": self.model,
        }


def status(project: PathLike | None = None) -> Status:
    """The tier, workspaces, stores and every model version loopline registered."""
    from loopline import catalog

    instance = Instance.open(project)
    settings = instance.settings
    revision = instance.db.revision()
    provisioned = revision is not None
    models = tuple(catalog.list_versions(instance.db)) if provisioned else ()
    endpoints: tuple[dict[str, Any], ...] = ()
    if revision == HEAD_REVISION:
        from loopline.endpoints import service

        endpoints = tuple(e.to_dict() for e in service.list_endpoints(instance))
    return Status(
        project=settings.config.project,
        root=settings.root,
        tier=settings.tier,
        workspaces=settings.workspaces,
        provisioned=provisioned,
        stores={
            name: {k: redact(v) for k, v in settings.store(name).to_dict().items()}
            for name in instance.store_names
        },
        datastores={name: redact(settings.datastore(name)) for name in DATASTORES},
        state_url=instance.db.redacted_url,
        models=models,
        endpoints=endpoints,
        repository_url=_repository_url(settings.root),
        model=settings.config.model.name,
    )


def _repository_url(root: Path) -> str | None:
    from loopline.git import web_url

    try:
        return web_url(root)
    except Exception:  # no git, or not a repository: the status has no link, nothing more
        return None


def history(
    project: PathLike | None = None,
    *,
    commit: str | None = None,
    workspace: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """The audit log, oldest first, filtered by commit prefix, workspace, model, kind or actor."""
    from loopline import audit

    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return audit.query(
        instance.db, commit=commit, workspace=workspace, model=model, kind=kind, actor=actor, limit=limit
    )


@dataclass(frozen=True)
class WorkspaceInfo:
    """The MLflow locations of one workspace, as ``use_workspace`` set them."""

    workspace: str
    tracking_uri: str
    registry_uri: str
    experiment: str


def use_workspace(workspace: str = "dev", project: PathLike | None = None) -> WorkspaceInfo:
    """Point this process's MLflow at a workspace and its experiment (for notebooks and scripts)."""
    instance = Instance.open(project)
    instance.require_workspace(workspace)
    instance.db.require_current(instance.root)
    location = instance.settings.store(workspace)
    store = instance.store(workspace)
    experiment = instance.settings.experiment
    store.experiment_id(experiment)
    import mlflow

    mlflow.set_tracking_uri(location.tracking_uri)
    mlflow.set_registry_uri(location.registry_uri)
    mlflow.set_experiment(experiment)
    return WorkspaceInfo(
        workspace=workspace,
        tracking_uri=location.tracking_uri,
        registry_uri=location.registry_uri,
        experiment=experiment,
    )


# Online endpoints -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEndpoint:
    """A new endpoint and, with key auth, its two keys: shown this once, stored only as hashes."""

    endpoint: EndpointInfo
    keys: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the one place keys appear: the answer to the request that made them)."""
        return {"endpoint": self.endpoint.to_dict(), "keys": self.keys}


def create_endpoint(
    name: str,
    workspace: str = "dev",
    *,
    auth: str = "key",
    sensitive: bool = False,
    strict: bool = False,
    project: PathLike | None = None,
) -> NewEndpoint:
    """Create an online endpoint in a workspace; with key auth, return its two keys."""
    from loopline.endpoints import service

    info, keys = service.create_endpoint(
        Instance.open(project), name, workspace, auth, sensitive=sensitive, strict=strict
    )
    return NewEndpoint(info, keys)


def update_endpoint(
    name: str,
    *,
    workspace: str | None = None,
    strict: bool | None = None,
    sensitive: bool | None = None,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Change an endpoint's settings: ``strict`` request checks, ``sensitive`` (no monitoring samples)."""
    from loopline.endpoints import service

    return service.update_endpoint(_provisioned(project), name, workspace, strict=strict, sensitive=sensitive)


def list_endpoints(workspace: str | None = None, *, project: PathLike | None = None) -> list[EndpointInfo]:
    """Every online endpoint (of one workspace when given)."""
    from loopline.endpoints import service

    instance = _provisioned(project)
    return service.list_endpoints(instance, workspace)


def get_endpoint(name: str, *, workspace: str | None = None, project: PathLike | None = None) -> EndpointInfo:
    """One endpoint with its deployments, traffic and mirror (``workspace`` where the name is in several)."""
    from loopline.endpoints import service

    return service.get_endpoint(_provisioned(project), name, workspace)


def delete_endpoint(
    name: str, *, workspace: str | None = None, force: bool = False, project: PathLike | None = None
) -> EndpointInfo:
    """Delete an endpoint (with its deployments only when ``force``)."""
    from loopline.endpoints import service

    return service.delete_endpoint(_provisioned(project), name, workspace, force=force)


@dataclass(frozen=True)
class EndpointKeys:
    """An endpoint's keys as listings show them, and a regenerated key (shown this once)."""

    endpoint: str
    keys: list[dict[str, str]]
    regenerated: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"endpoint": self.endpoint, "keys": self.keys, "regenerated": self.regenerated}


def endpoint_keys(
    name: str,
    *,
    workspace: str | None = None,
    regenerate: str | None = None,
    project: PathLike | None = None,
) -> EndpointKeys:
    """List an endpoint's keys (by prefix); with ``regenerate``, replace that one and return it."""
    from loopline.endpoints import service

    instance = _provisioned(project)
    fresh = {regenerate: service.regenerate_key(instance, name, regenerate, workspace)} if regenerate else {}
    listing = [k.to_dict() for k in service.key_listing(instance, name, workspace)]
    return EndpointKeys(name, listing, fresh)


def set_traffic(
    name: str,
    traffic: dict[str, int] | list[str] | None,
    *,
    workspace: str | None = None,
    mirror: dict[str, int] | list[str] | None = None,
    reason: str | None = None,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Set an endpoint's traffic split (``{"blue": 90, "green": 10}`` or ``["blue=90", "green=10"]``; None
    keeps the split, to change only the ``mirror``)."""
    from loopline.endpoints import service
    from loopline.endpoints.traffic import parse_assignments

    shares = parse_assignments(traffic) if isinstance(traffic, list) else traffic
    if isinstance(mirror, list):
        mirror = {} if mirror in (["none"], []) else parse_assignments(mirror, "mirror")
    return service.set_traffic(
        _provisioned(project), name, shares, mirror, reason=reason, workspace=workspace
    )


def create_deployment(
    endpoint: str,
    name: str,
    *,
    workspace: str | None = None,
    model: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    traffic: int | None = None,
    check: bool = True,
    project: PathLike | None = None,
) -> EndpointInfo:
    """Deploy a registered model version (by ``version`` or ``commit``) to an endpoint."""
    from loopline.endpoints import service
    from loopline.sandbox import check_model

    instance = _provisioned(project)
    chosen = model or instance.settings.config.model.name
    return service.create_deployment(
        instance,
        endpoint,
        name,
        chosen,
        version=version,
        commit=commit,
        traffic=traffic,
        check=check_model if check else None,
        workspace=workspace,
    )


def delete_deployment(
    endpoint: str, name: str, *, workspace: str | None = None, project: PathLike | None = None
) -> EndpointInfo:
    """Remove a deployment that takes no traffic."""
    from loopline.endpoints import service

    return service.delete_deployment(_provisioned(project), endpoint, name, workspace)


def invoke_endpoint(
    name: str,
    payload: dict[str, Any] | bytes,
    *,
    workspace: str | None = None,
    deployment: str | None = None,
    route: str = "invocations",
    content_type: str = "application/json",
    timeout: float = 30,
    wait: float = 0,
    project: PathLike | None = None,
) -> InvokeResult:
    """Send one scoring request to a served endpoint with loopline's own key; return the answer (``wait``:
    seconds to give a server that is still starting)."""
    from loopline.endpoints.client import invoke

    return invoke(
        _provisioned(project),
        name,
        payload,
        deployment=deployment,
        route=route,
        content_type=content_type,
        timeout=timeout,
        workspace=workspace,
        wait=wait,
    )


def _provisioned(project: PathLike | None) -> Instance:
    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return instance


# Outer loops and rollback ------------------------------------------------------------------------------


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
    reporter: Reporter | None = None,
) -> ReleaseResult:
    """Release a commit's registry version to prod, at once or in watched canary steps."""
    from loopline.loops.release import run_outer_loop_prod

    return run_outer_loop_prod(
        Instance.open(project),
        commit=commit,
        model=model,
        canary=canary,
        watch=watch,
        override_reason=override_reason,
        reporter=reporter,
    )


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
    """Return prod (or ``endpoint``) to the version of ``commit``, or to the previous release."""
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
        workspace=_endpoint_workspace(instance, endpoint, workspace),
    )


def _endpoint_workspace(instance: Instance, endpoint: str | None, workspace: str | None) -> str:
    """The workspace of an endpoint named by a caller: given, else that of the only endpoint of the name,
    else prod (for the prod endpoint, and for history that outlived its endpoint)."""
    if workspace is not None or endpoint is None:
        return workspace or "prod"
    from loopline.endpoints import service

    try:
        return service.get_endpoint(instance, endpoint).workspace
    except NotFound:
        return "prod"


@dataclass(frozen=True)
class ValidationReport:
    """The newest outer-loop test report of a commit, as written next to its registry version."""

    git_commit: str
    model: str
    version: int | None
    outcome: str
    uri: str
    markdown: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def validation_report(commit: str | None = None, *, project: PathLike | None = None) -> ValidationReport:
    """The newest validation report of a commit (a prefix; default HEAD), from the shared registry's store."""
    import json

    from loopline import audit
    from loopline.git import resolve_commit

    instance = _provisioned(project)
    commit = commit or resolve_commit(instance.root, "HEAD")
    found = audit.query(instance.db, commit=commit, kind="gate-evaluated", workspace="test", limit=1)
    uri = found[0].event.details.get("report_uri") if found else None
    if not found or not uri:
        raise NotFound(
            f"commit {commit} has no validation report; run `loopline outer-loop test --commit {commit}`"
        )
    event = found[0].event
    store = instance.store(SHARED)
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
    from loopline.endpoints import service

    instance = _provisioned(project)
    where = _endpoint_workspace(instance, endpoint, workspace)
    return service.release_history(instance, endpoint or instance.settings.prod_endpoint, where)


# Workflows and tiers -----------------------------------------------------------------------------------


def workflow_enabled(name: str, *, project: PathLike | None = None) -> WorkflowSwitch:
    """Whether the instance's tier runs workflow ``name``."""
    from loopline.workflows.files import is_enabled

    return is_enabled(name, Instance.open(project).settings.tier)


def workflow_list(*, project: PathLike | None = None) -> list[WorkflowSwitch]:
    """Every workflow, and whether the instance's tier runs it."""
    from loopline.workflows.files import WORKFLOWS, is_enabled

    tier = Instance.open(project).settings.tier
    return [is_enabled(name, tier) for name in WORKFLOWS]


def workflow_run(
    name: str,
    *,
    event: str | None = None,
    inputs: dict[str, str] | None = None,
    project: PathLike | None = None,
    reporter: Reporter | None = None,
) -> WorkflowRun:
    """Run a workflow file of the project on this machine, as a GitHub runner would."""
    from loopline.workflows.runner import run_workflow

    instance = Instance.open(project)
    return run_workflow(
        instance.root, name, event=event, inputs=inputs, reporter=reporter, actor=instance.actor
    )


def set_tier(
    tier: str | Tier, *, project: PathLike | None = None, reporter: Reporter | None = None
) -> TierChange:
    """Move the instance to another tier: new workspaces are provisioned; workflow files stay as they are."""
    from loopline.tiers import set_tier as change

    return change(Instance.open(project), _tier(tier), reporter)


# Data assets, batch endpoints and jobs -----------------------------------------------------------------


def register_data(name: str, path: str, *, project: PathLike | None = None) -> tuple[DataAsset, bool]:
    """Pin the files at ``path`` (``inbox://folder/or/file``) as a version of data asset ``name``."""
    from loopline.data import register_asset

    return register_asset(_provisioned(project), name, path)


def list_data(name: str | None = None, *, project: PathLike | None = None) -> list[DataAsset]:
    """Data asset versions (of ``name`` when given)."""
    from loopline.data import list_assets

    return list_assets(_provisioned(project), name)


def get_data(name: str, version: int | None = None, *, project: PathLike | None = None) -> DataAsset:
    """One data asset version (default: the newest)."""
    from loopline.data import get_asset

    return get_asset(_provisioned(project), name, version)


def create_batch_endpoint(
    name: str, workspace: str = "dev", *, project: PathLike | None = None
) -> BatchEndpoint:
    """Create a batch endpoint in a workspace."""
    from loopline.batch import service

    return service.create_batch_endpoint(_provisioned(project), name, workspace)


def list_batch_endpoints(*, project: PathLike | None = None) -> list[BatchEndpoint]:
    """Every batch endpoint."""
    from loopline.batch import service

    return service.list_batch_endpoints(_provisioned(project))


def get_batch_endpoint(
    name: str, *, workspace: str | None = None, project: PathLike | None = None
) -> BatchEndpoint:
    """One batch endpoint with its deployments and default (``workspace`` where the name is in several)."""
    from loopline.batch import service

    return service.get_batch_endpoint(_provisioned(project), name, workspace)


def create_batch_deployment(
    endpoint: str,
    name: str,
    *,
    workspace: str | None = None,
    model: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    project: PathLike | None = None,
) -> BatchEndpoint:
    """Deploy a model version to a batch endpoint (the first becomes the default)."""
    from loopline.batch import service

    instance = _provisioned(project)
    return service.create_batch_deployment(
        instance,
        endpoint,
        name,
        model or instance.settings.config.model.name,
        version=version,
        commit=commit,
        workspace=workspace,
    )


def batch_invoke(
    endpoint: str,
    data: str,
    *,
    workspace: str | None = None,
    deployment: str | None = None,
    project: PathLike | None = None,
    reporter: Reporter | None = None,
) -> BatchJob:
    """Score a data asset (``NAME`` or ``NAME:VERSION``) with a batch endpoint."""
    from loopline.batch import jobs
    from loopline.data import parse_asset

    name, version = parse_asset(data)
    return jobs.invoke(_provisioned(project), endpoint, name, version, deployment, reporter, workspace)


def batch_resume(
    job_id: str, *, project: PathLike | None = None, reporter: Reporter | None = None
) -> BatchJob:
    """Finish a batch job that failed or was interrupted."""
    from loopline.batch import jobs

    return jobs.resume(_provisioned(project), job_id, reporter)


def batch_jobs(
    endpoint: str | None = None, *, workspace: str | None = None, project: PathLike | None = None
) -> list[BatchJob]:
    """Batch jobs (of one endpoint, of one workspace), newest first."""
    from loopline.batch import jobs

    return jobs.list_jobs(_provisioned(project), endpoint, workspace)


def batch_job(job_id: str, *, project: PathLike | None = None) -> BatchJob:
    """One batch job."""
    from loopline.batch import jobs

    return jobs.get_job(_provisioned(project), job_id)


def batch_promote(
    endpoint: str,
    deployment: str,
    *,
    workspace: str | None = None,
    expected_current: str | None = None,
    project: PathLike | None = None,
) -> DefaultChange:
    """Make a deployment the batch endpoint's default, refusing when the default is not the expected one."""
    from loopline.batch import service

    return service.promote(_provisioned(project), endpoint, deployment, expected_current, workspace)


def batch_rollback(
    endpoint: str, *, workspace: str | None = None, project: PathLike | None = None
) -> DefaultChange:
    """Restore a batch endpoint's previous default."""
    from loopline.batch import service

    return service.rollback(_provisioned(project), endpoint, workspace)


# Monitoring ---------------------------------------------------------------------------------------------


def monitor_check(
    endpoint: str | None = None,
    *,
    workspace: str | None = None,
    window: str | None = None,
    deployment: str | None = None,
    labels: str | None = None,
    project: PathLike | None = None,
) -> CheckResult:
    """An endpoint's monitoring signals over a window (default: the prod endpoint)."""
    from loopline.monitoring.check import run_check

    instance = _provisioned(project)
    return run_check(
        instance,
        endpoint or instance.settings.prod_endpoint,
        window=window,
        deployment=deployment,
        labels=labels,
        workspace=workspace or (None if endpoint else "prod"),
    )


def policy_evaluate(
    policy: PathLike | None = None,
    *,
    endpoint: str | None = None,
    workspace: str | None = None,
    act: bool = False,
    project: PathLike | None = None,
) -> Decision:
    """Decide from the latest check with a policy file (default ``monitoring.policy``); act when asked."""
    from loopline.loops.policy import carry_out
    from loopline.monitoring.policy import evaluate_policy, record

    instance = _provisioned(project)
    path = Path(policy) if policy else instance.root / instance.settings.config.monitoring.policy
    where = _endpoint_workspace(instance, endpoint, workspace)
    decision = evaluate_policy(instance, path, endpoint or instance.settings.prod_endpoint, where)
    return carry_out(instance, decision) if act else record(instance, decision)


@dataclass(frozen=True)
class EndpointMetrics:
    """An endpoint's traffic over a recent window, in buckets, summed over deployments and replicas."""

    endpoint: str
    minutes: int
    step_seconds: int
    points: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "endpoint": self.endpoint,
            "minutes": self.minutes,
            "step_seconds": self.step_seconds,
            "points": self.points,
        }


def endpoint_metrics(
    name: str,
    *,
    workspace: str | None = None,
    minutes: int = 60,
    step_seconds: int = 30,
    project: PathLike | None = None,
) -> EndpointMetrics:
    """Requests per second, error rate and p50/p99 latency of an endpoint over the last ``minutes``."""
    import time

    from loopline.endpoints import service
    from loopline.serving.stats import series

    if not 1 <= minutes <= 120 or not 1 <= step_seconds <= 3600:
        raise UsageError(
            "minutes must be 1 to 120 (statistics are kept two hours) and step_seconds 1 to 3600"
        )
    instance = _provisioned(project)
    where = service.get_endpoint(instance, name, workspace).workspace
    points = series(instance.db, where, name, time.time() - minutes * 60, step_seconds)
    return EndpointMetrics(name, minutes, step_seconds, points)


def latest_check(
    endpoint: str | None = None, *, workspace: str | None = None, project: PathLike | None = None
) -> dict[str, Any] | None:
    """The newest monitoring check of an endpoint (default: the prod endpoint), or None without one."""
    from loopline.errors import InsufficientEvidence
    from loopline.monitoring.policy import latest_check as newest

    instance = _provisioned(project)
    where = _endpoint_workspace(instance, endpoint, workspace)
    try:
        row = newest(instance, endpoint or instance.settings.prod_endpoint, where)
    except InsufficientEvidence:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}


# Team mode: the audit log and loopline's database ---------------------------------------------------


def _checkpoints(instance: Instance) -> str | None:
    """The configured checkpoint folder, a project-relative path made absolute."""
    location = instance.settings.config.audit.checkpoints
    if location is None or "://" in location or Path(location).is_absolute():
        return location
    return str(instance.root / location)


def audit_verify(
    *, checkpoint: dict[str, Any] | None = None, project: PathLike | None = None
) -> Verification:
    """Recompute the audit log's chain (HMACs with the audit key where events are keyed); check it against
    the newest checkpoint in ``audit.checkpoints`` and ``checkpoint`` (one kept elsewhere, such as a CI
    artifact): name every edited, deleted or reordered event, and a log cut short."""
    from loopline import audit

    instance = _provisioned(project)
    marks = [audit.Checkpoint.from_dict(checkpoint)] if checkpoint is not None else []
    location = _checkpoints(instance)
    stored = audit.newest_checkpoint(location) if location else None
    return audit.verify(instance.db, [*marks, *([stored] if stored else [])])


@dataclass(frozen=True)
class CheckpointWritten:
    """A signed head of the audit log, and where it was kept."""

    seq: int
    hash: str
    at: str
    keyed_from: int | None
    signature: str
    stored: str | None

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint itself, as its file holds it."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "keyed_from": self.keyed_from,
            "signature": self.signature,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**self.checkpoint(), "stored": self.stored}


def audit_checkpoint(*, project: PathLike | None = None) -> CheckpointWritten:
    """Sign the head of the audit log (sequence, hash, time) with the audit key and keep it in
    ``audit.checkpoints``; refused when the log does not verify."""
    from loopline import audit
    from loopline.errors import AuditLogAltered

    audit.signing_key()  # no key, no checkpoint: say so before anything else
    instance = _provisioned(project)
    location = _checkpoints(instance)
    found = audit.verify(
        instance.db, [m for m in [audit.newest_checkpoint(location)] if m] if location else []
    )
    if not found.intact:
        raise AuditLogAltered(where="loopline's database", problem=found.problems[0]["problem"])
    mark = audit.checkpoint(instance.db)
    stored = audit.save_checkpoint(mark, location) if location else None
    return CheckpointWritten(mark.seq, mark.hash, mark.at, mark.keyed_from, mark.signature, stored)


def migrate_state(to: str, *, project: PathLike | None = None) -> MigrationResult:
    """Copy loopline's database, history and all, into an empty database at ``to``."""
    from loopline import audit
    from loopline.errors import AuditLogAltered
    from loopline.events import StateMigrated
    from loopline.state import Database
    from loopline.state.migrate import copy_state

    instance = _provisioned(project)
    target = Database(to)
    result = copy_state(instance.db, target)
    copied = audit.verify(target)
    if not copied.intact:
        raise AuditLogAltered(where=target.redacted_url, problem=copied.problems[0]["problem"])
    audit.record(
        target,
        StateMigrated(
            actor=instance.actor, source=result.source, target=result.target, details={"rows": result.rows}
        ),
    )
    return result


# Team mode: users, roles and tokens of the control plane --------------------------------------------


def _scope(instance: Instance, workspace: str) -> str:
    from loopline.access import ALL_WORKSPACES

    if workspace != ALL_WORKSPACES:
        instance.require_workspace(workspace)
    return workspace


def user_add(name: str, *, project: PathLike | None = None) -> UserInfo:
    """Add a control-plane user (with no roles until granted); adding an existing user changes nothing."""
    from loopline.access import add_user

    instance = _provisioned(project)
    return add_user(instance.db, name, instance.actor)[0]


def user_list(*, project: PathLike | None = None) -> list[UserInfo]:
    """Every control-plane user and their roles."""
    from loopline.access import list_users

    return list_users(_provisioned(project).db)


def user_grant(name: str, role: str | None, workspace: str, *, project: PathLike | None = None) -> UserInfo:
    """Give a user a role on a workspace (``*`` for every workspace); ``role=None`` takes it away."""
    from loopline.access import grant

    instance = _provisioned(project)
    return grant(instance.db, name, role, _scope(instance, workspace), instance.actor)


def token_create(user: str, *, expires: str | None = None, project: PathLike | None = None) -> TokenInfo:
    """A new API token for a user (``expires`` like ``30d``); its secret is shown this once."""
    from loopline.access import create_token

    instance = _provisioned(project)
    return create_token(instance.db, user, expires, instance.actor)


def token_list(user: str | None = None, *, project: PathLike | None = None) -> list[TokenInfo]:
    """Every API token's id, user, expiry and revocation (never a secret)."""
    from loopline.access import list_tokens

    return list_tokens(_provisioned(project).db, user)


def token_revoke(token_id: str, *, project: PathLike | None = None) -> TokenInfo:
    """Revoke an API token by its id; it is refused from then on."""
    from loopline.access import revoke_token

    instance = _provisioned(project)
    return revoke_token(instance.db, token_id, instance.actor)


def list_locks(*, project: PathLike | None = None) -> list[LockInfo]:
    """Every lock held now: its name, owner, host, process and lease."""
    from loopline.state.locks import list_locks as held

    return held(_provisioned(project).db)


def unlock(name: str, *, reason: str | None = None, project: PathLike | None = None) -> LockInfo:
    """Break lock ``name`` whose holder cannot release it (a process gone for good); audited."""
    from loopline import audit
    from loopline.events import LockBroken
    from loopline.state.locks import break_lock

    instance = _provisioned(project)
    with instance.db.write() as connection:
        broken = break_lock(connection, name)
        if broken is None:
            raise NotFound(f"nobody holds lock '{shorten(name, 120)}'; `loopline locks` lists the held ones")
        audit.append(
            connection,
            LockBroken(
                actor=instance.actor,
                target=name,
                reason=reason,
                details={"holder": broken.owner, "host": broken.host, "pid": broken.pid},
            ),
        )
    return broken


def import_inner_loop(
    model_dir: PathLike,
    artifacts: PathLike | None,
    *,
    commit: str,
    branch: str,
    dirty_files: list[str],
    diff_digest: str | None,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    model: str | None = None,
    allow_dirty: bool = False,
    attestation: str | None = None,
    project: PathLike | None = None,
) -> InnerLoopResult:
    """The inner loop for a run trained elsewhere: check the commit and the model, import the run into
    dev, then gate, register and share it (provenance ``uploaded``, or ``ci-attested`` with a valid
    GitHub Actions OIDC token)."""
    from loopline.git import CommitIdentity
    from loopline.loops.imported import admit, importer
    from loopline.loops.inner import run_inner_loop
    from loopline.mlflow_store import RunInfo

    instance = Instance.open(project)
    run = RunInfo(run_id="", status="FINISHED", metrics=metrics, tags=tags, params=params)
    identity = CommitIdentity(
        commit=commit, branch=branch, dirty_files=tuple(dirty_files), diff_digest=diff_digest
    )
    admit(instance, model or instance.settings.config.model.name, identity, Path(model_dir))
    return run_inner_loop(
        instance,
        model=model,
        allow_dirty=allow_dirty,
        identity=identity,
        trainer=importer(run, Path(model_dir), Path(artifacts) if artifacts else None),
        attestation=attestation,
    )

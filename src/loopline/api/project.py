"""The SDK: projects, the inner loop, status and history, workflows and tiers."""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.api._common import PathLike, commit_filter, provisioned, tier_of
from loopline.api.results import Status, WorkspaceInfo
from loopline.config import DATASTORES, redact
from loopline.domain import SHARED, TIER_WORKSPACES, Tier
from loopline.errors import UsageError
from loopline.instance import Instance
from loopline.state import HEAD_REVISION

if TYPE_CHECKING:
    from loopline.audit import AuditRecord
    from loopline.loops.candidates import Comparison
    from loopline.loops.experiments import ExperimentReport, ExperimentRuns, SweepSummary
    from loopline.loops.inner import InnerLoopResult
    from loopline.loops.sweep import SweepResult
    from loopline.onboard import Onboarded
    from loopline.progress import Reporter
    from loopline.provision import UpResult
    from loopline.run_record import RunRecord
    from loopline.scaffold import InitResult
    from loopline.tiers import TierChange
    from loopline.workflows.files import WorkflowSwitch
    from loopline.workflows.runner import WorkflowRun
    from loopline.workflows.update import WorkflowsUpdate


def init(
    path: PathLike,
    tier: str | Tier = Tier.SIMPLE,
    *,
    name: str | None = None,
    model: str | None = None,
    git: bool = True,
) -> InitResult:
    """Write a runnable sample project into a new or empty folder (``name``: the project's, default the
    folder's name)."""
    from loopline.scaffold import init_project

    return init_project(Path(path), tier_of(tier), name=name, model=model, git=git)


def init_existing(
    path: PathLike = ".",
    tier: str | Tier = Tier.SIMPLE,
    *,
    name: str | None = None,
    model: str | None = None,
    command: str | None = None,
    inputs: dict[str, str] | None = None,
    from_run: str | None = None,
    tracking_uri: str | None = None,
    reporter: Reporter | None = None,
) -> Onboarded:
    """Set up loopline in a repository that already trains with MLflow: find the entry point, run it once,
    write loopline.yaml, a gate and the workflow files (never overwriting a file). ``inputs`` gives a local
    copy of each data input the training reads from storage only Azure ML reaches (``{"credit_data":
    "~/credit.csv"}``), for that one run; loopline.yaml names them as data assets to upload. With
    ``from_run`` (an MLflow run id), what that earlier run of the training logged is read instead of
    running it, from the store at ``tracking_uri`` (default ``MLFLOW_TRACKING_URI``, else the repository's
    ``mlflow.db`` or ``mlruns/``). ``reporter`` is told when the training starts."""
    from loopline.onboard import onboard

    return onboard(
        Path(path),
        tier_of(tier),
        name=name,
        model=model,
        command=command,
        inputs=inputs,
        from_run=from_run,
        tracking_uri=tracking_uri,
        reporter=reporter,
    )


def up(project: PathLike | None = None, *, reporter: Reporter | None = None) -> UpResult:
    """Create the tier's workspaces, the shared registry and the datastores; idempotent."""
    from loopline.provision import provision

    return provision(Instance.open(project), reporter)


def inner_loop(
    project: PathLike | None = None,
    *,
    model: str | None = None,
    allow_dirty: bool = False,
    compute: str | None = None,
    reporter: Reporter | None = None,
) -> InnerLoopResult:
    """Train at the current commit (here, or on the ``compute`` target), check the gate, register in dev
    and share to the registry.

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
        compute=compute,
        attestation=request_token(instance.settings.config.registry.attestation.audience),
    )


def sweep(
    project: PathLike | None = None,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    model: str | None = None,
    allow_dirty: bool = False,
    compute: str | None = None,
    reporter: Reporter | None = None,
) -> SweepResult:
    """Sweep the current commit's hyperparameters (``sweep:`` in loopline.yaml): run the trials still to
    run (``parallel`` at a time, default ``sweep.parallel``, each in its own git worktree of the commit),
    each a child run of the sweep's parent run, then gate, register and share the best trial's model as
    the inner loop does (one version per commit). A killed sweep goes on where it stopped."""
    from loopline.loops.sweep import run_sweep

    return run_sweep(
        Instance.open(project), trials=trials, parallel=parallel, model=model, compute=compute,
        allow_dirty=allow_dirty, reporter=reporter,
    )  # fmt: skip


def report_experiment(
    *,
    last: int = 20,
    out: PathLike | None = None,
    comment: bool = False,
    pull_request: int | None = None,
    project: PathLike | None = None,
) -> ExperimentReport:
    """Write the experiment report of dev's newest ``last`` finished runs (Markdown with SVG charts, in
    ``out`` or ``.loopline/reports/``); with ``comment``, also post it on the pull request of this GitHub
    Actions run (or ``pull_request``), its charts drawn by GitHub."""
    from loopline.loops.experiments import experiment_runs, publish, report_folder, write_report

    instance = provisioned(project)
    data = experiment_runs(instance, last=last)
    report = write_report(data, Path(out) if out else report_folder(instance.root))
    return publish(report, comment, pull_request)


def experiment_data(*, last: int = 20, project: PathLike | None = None) -> ExperimentRuns:
    """dev's newest ``last`` finished runs with what the experiment report shows of them (the metrics, the
    trend between the newest commit and the one before); :func:`report_experiment` writes it."""
    from loopline.loops.experiments import experiment_runs

    return experiment_runs(provisioned(project), last=last)


def sweeps(*, limit: int = 10, project: PathLike | None = None) -> list[SweepSummary]:
    """dev's newest ``limit`` sweeps, newest first: each one's parent run, best trial and trials."""
    from loopline.loops.experiments import sweeps as listed

    return listed(provisioned(project), limit)


def compare(
    ranking: PathLike | None = None,
    *,
    runs: list[str] | None = None,
    last: int = 20,
    commit: str | None = None,
    project: PathLike | None = None,
) -> Comparison:
    """Rank dev's runs (the named ``runs``, or the newest ``last`` finished ones, of ``commit`` when given)
    by a ranking file (default ``model.ranking``): primary metric, weighted secondary metrics, constraints."""
    from loopline.loops.candidates import compare_runs

    instance = provisioned(project)
    path = Path(ranking) if ranking else instance.root / instance.settings.config.model.ranking
    return compare_runs(instance, path, run_ids=runs, last=last, commit=commit_filter(instance, commit))


def status(project: PathLike | None = None) -> Status:
    """The tier, workspaces, stores, every model version loopline registered, and what each online and
    batch endpoint serves."""
    from loopline import catalog

    instance = Instance.open(project)
    settings = instance.settings
    revision = instance.db.revision()
    provisioned = revision is not None
    models = tuple(catalog.list_versions(instance.db)) if provisioned else ()
    endpoints: tuple[dict[str, Any], ...] = ()
    batch: tuple[dict[str, Any], ...] = ()
    if revision == HEAD_REVISION:
        from loopline.batch import service as batch_service
        from loopline.endpoints import service
        from loopline.withdrawn import withdrawn_now

        endpoints = tuple(e.to_dict() for e in service.list_endpoints(instance))
        batch = tuple(b.to_dict() for b in batch_service.list_batch_endpoints(instance))
        withdrawn = {w.content_digest for w in withdrawn_now(instance.db)}
        models = tuple(replace(m, withdrawn=m.content_digest in withdrawn) for m in models)
    return Status(
        project=settings.config.project,
        root=settings.root,
        tier=settings.tier,
        workspaces=settings.workspaces,
        provisioned=provisioned,
        stores={
            name: {k: v and redact(v) for k, v in settings.store(name).to_dict().items()}
            for name in instance.store_names
        },
        datastores={name: redact(settings.datastore(name)) for name in DATASTORES},
        state_url=instance.db.redacted_url,
        models=models,
        endpoints=endpoints,
        batch_endpoints=batch,
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
    before: int | None = None,
) -> list[AuditRecord]:
    """The audit log, oldest first, filtered by commit prefix, workspace, model, kind or actor; ``limit``
    keeps the newest so many, ``before`` only the events before that sequence number (the page older than
    one whose oldest event it is)."""
    from loopline import audit
    from loopline.events import EVENT_TYPES

    _known("event kind", kind, sorted(EVENT_TYPES))
    _known("workspace", workspace, [*TIER_WORKSPACES[Tier.FULL], SHARED])
    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return audit.query(
        instance.db,
        commit=commit_filter(instance, commit),
        workspace=workspace,
        model=model,
        kind=kind,
        actor=actor,
        limit=limit,
        before=before,
    )


def _known(what: str, value: str | None, known: list[str]) -> None:
    """Refuse a filter ``value`` that can match nothing, naming the one meant where it is close."""
    if value is None or value in known:
        return
    close = difflib.get_close_matches(value, known, n=1)
    meant = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(f"no {what} '{value}'; {meant}the {what}s are {', '.join(known)}")


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
        instance.root,
        name,
        event=event,
        inputs=inputs,
        reporter=reporter,
        actor=instance.actor,
        project=instance.settings.config.project,
    )


def workflow_update(*, check: bool = False, project: PathLike | None = None) -> WorkflowsUpdate:
    """Bring the project's workflow files to this loopline's templates, merging the change into the team's
    edits as git merges (conflicts marked in the file); with ``check``, write nothing and say what would
    change."""
    from loopline.workflows.update import update_workflows

    instance = Instance.open(project)
    return update_workflows(instance.root, instance.settings.config.project, check=check)


def set_tier(
    tier: str | Tier, *, project: PathLike | None = None, reporter: Reporter | None = None
) -> TierChange:
    """Move the instance to another tier: new workspaces are provisioned; workflow files stay as they are."""
    from loopline.tiers import set_tier as change

    return change(Instance.open(project), tier_of(tier), reporter)


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
    record: RunRecord | None = None,
    project: PathLike | None = None,
) -> InnerLoopResult:
    """The inner loop for a run trained elsewhere: check the commit and the model, import the run into
    dev, then gate, register and share it (provenance ``uploaded``, or ``ci-attested`` with a valid
    GitHub Actions OIDC token). ``record`` gives the run's name, experiment, every logged step of its
    metrics, its datasets and the training's other runs, as they were where it was trained."""
    from loopline.git import CommitIdentity
    from loopline.loops.imported import admit, importer
    from loopline.loops.inner import run_inner_loop
    from loopline.mlflow_store import RunInfo

    instance = Instance.open(project)
    run = RunInfo(run_id="", status="FINISHED", metrics=metrics, tags=tags, params=params)
    identity = CommitIdentity(
        commit=commit, branch=branch, dirty_files=tuple(dirty_files), diff_digest=diff_digest
    )
    admit(instance, instance.model_name(model), identity, Path(model_dir))
    return run_inner_loop(
        instance,
        model=model,
        allow_dirty=allow_dirty,
        identity=identity,
        trainer=importer(run, Path(model_dir), Path(artifacts) if artifacts else None, record),
        attestation=attestation,
    )

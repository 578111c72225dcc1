"""``data``, ``batch-endpoint``, ``batch-deployment``, ``batch``, ``monitor`` and ``policy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import (
    EndpointWorkspaceOption,
    JsonOption,
    ModelOption,
    ProjectOption,
    VersionCommitOption,
    VersionOption,
    WorkspaceOption,
    opt,
)
from loopline.cli.output import Output, StepReporter
from loopline.cli.sdk import api

data_app = typer.Typer(help="Data assets: register, list, show.", no_args_is_help=True)
batch_endpoint_app = typer.Typer(help="Batch endpoints: create, list, show.", no_args_is_help=True)
batch_deployment_app = typer.Typer(
    help="Deployments of a batch endpoint: create, list.", no_args_is_help=True
)
batch_app = typer.Typer(help="Batch scoring: invoke, promote, rollback, jobs.", no_args_is_help=True)
job_app = typer.Typer(help="Batch jobs: list, show, resume.", no_args_is_help=True)
monitor_app = typer.Typer(help="Monitoring of online endpoints.", no_args_is_help=True)
policy_app = typer.Typer(help="Policies that turn monitoring signals into decisions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(batch_endpoint_app, name="batch-endpoint")
app.add_typer(batch_deployment_app, name="batch-deployment")
app.add_typer(batch_app, name="batch")
batch_app.add_typer(job_app, name="job")
app.add_typer(monitor_app, name="monitor")
app.add_typer(policy_app, name="policy")

BatchName = Annotated[str, typer.Argument(help="The batch endpoint's name.")]


@data_app.command("register")
def data_register(
    name: Annotated[str, typer.Argument(help="The data asset's name.")],
    path: Annotated[
        str, typer.Option("--path", help="A file or folder in a datastore: inbox://folder/or/file.")
    ],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Pin the files at a datastore path as a new version of a data asset (when they changed)."""
    asset, created = api.register_data(name, path, project=project)
    message = (
        f"registered {asset.name}:{asset.version} ({len(asset.manifest)} files, {asset.digest[:19]}…)"
        if created
        else f"{asset.name}:{asset.version} already holds these files; nothing new"
    )
    Output(json).emit({**asset.to_dict(), "created": created}, lambda console: console.print(escape(message)))


@data_app.command("list")
def data_list(
    name: Annotated[
        str | None, typer.Argument(help="Only this asset's versions.", show_default=False)
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """List data asset versions."""
    assets = api.list_data(name, project=project)

    def human(console: Console) -> None:
        table = Table()
        for column in ("asset", "version", "path", "files", "digest", "registered"):
            table.add_column(column)
        for asset in assets:
            table.add_row(
                asset.name,
                str(asset.version),
                asset.reference,
                str(len(asset.manifest)),
                asset.digest[:19] + "…",
                asset.created_at,
            )
        console.print(table)

    Output(json).emit({"assets": [a.to_dict() for a in assets]}, human)


@data_app.command("show")
def data_show(
    asset: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show one data asset version and its files."""
    from loopline.data import parse_asset

    name, version = parse_asset(asset)
    found = api.get_data(name, version, project=project)

    def human(console: Console) -> None:
        console.print(f"{found.name}:{found.version}  {found.reference}  {found.digest}")
        for entry in found.manifest:
            console.print(f"  {entry['sha256'][:12]}  {escape(entry['path'])}")

    Output(json).emit(found.to_dict(), human)


@batch_endpoint_app.command("create")
def batch_endpoint_create(
    name: BatchName,
    workspace: WorkspaceOption = "dev",
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Create a batch endpoint."""
    info = api.create_batch_endpoint(name, workspace, project=project)
    Output(json).emit(info.to_dict(), lambda console: console.print(f"created batch endpoint {escape(name)}"))


@batch_endpoint_app.command("list")
def batch_endpoint_list(project: ProjectOption = None, json: JsonOption = False) -> None:
    """List batch endpoints."""
    found = api.list_batch_endpoints(project=project)

    def human(console: Console) -> None:
        for info in found:
            console.print(
                f"{info.name}  {info.workspace}  default {info.default or '(none)'}  "
                f"deployments {', '.join(d.name for d in info.deployments) or '(none)'}"
            )

    Output(json).emit({"batch_endpoints": [e.to_dict() for e in found]}, human)


@batch_endpoint_app.command("show")
def batch_endpoint_show(
    name: BatchName,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show a batch endpoint, its deployments and its default."""
    info = api.get_batch_endpoint(name, workspace=workspace, project=project)

    def human(console: Console) -> None:
        console.print(
            f"{info.name}  {info.workspace}  default {info.default or '(none)'}  "
            f"previous {info.previous or '(none)'}"
        )
        for deployment in info.deployments:
            console.print(
                f"  {deployment.name}  {deployment.model} v{deployment.version}  {deployment.git_commit[:7]}"
            )

    Output(json).emit(info.to_dict(), human)


@batch_deployment_app.command("create")
def batch_deployment_create(
    endpoint: BatchName,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    workspace: EndpointWorkspaceOption = None,
    model: ModelOption = None,
    version: VersionOption = None,
    commit: VersionCommitOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a model version to a batch endpoint (files checked against their digest)."""
    info = api.create_batch_deployment(
        endpoint, name, workspace=workspace, model=model, version=version, commit=commit, project=project
    )
    Output(json).emit(
        info.to_dict(),
        lambda console: console.print(
            f"{escape(endpoint)}: deployments {', '.join(d.name for d in info.deployments)}; "
            f"default {info.default}"
        ),
    )


@batch_deployment_app.command("list")
def batch_deployment_list(
    endpoint: BatchName,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """List a batch endpoint's deployments."""
    batch_endpoint_show(endpoint, workspace, project, json)


@batch_app.command("invoke")
def batch_invoke(
    endpoint: BatchName,
    data: Annotated[str, typer.Option("--input", help="The data asset to score: NAME or NAME:VERSION.")],
    deployment: Annotated[
        str | None,
        opt("--deployment", "-d", help="A deployment other than the default."),
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Score a data asset in chunks; write Parquet predictions and their lineage to predictions://."""
    output = Output(json)
    job = api.batch_invoke(
        endpoint,
        data,
        workspace=workspace,
        deployment=deployment,
        project=project,
        reporter=StepReporter(output) if not json else None,
    )
    output.emit(
        job.to_dict(),
        lambda console: console.print(
            f"job {job.id}: {job.rows:,} rows scored by {job.deployment} (v{job.version}, "
            f"{job.git_commit[:7]}) into {job.output}"
        ),
    )
    output.github({"job": job.id, "output": job.output, "rows": str(job.rows)})


@batch_app.command("promote")
def batch_promote(
    endpoint: BatchName,
    deployment: Annotated[str, typer.Argument(help="The deployment to make the default.")],
    expected_current: Annotated[
        str | None,
        opt(
            "--expected-current",
            help="Refuse unless this is the default now (so two workflows cannot overwrite each other).",
        ),
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Make a deployment the batch endpoint's default."""
    change = api.batch_promote(
        endpoint, deployment, workspace=workspace, expected_current=expected_current, project=project
    )
    Output(json).emit(change.to_dict(), lambda console: console.print(escape(change.message)))


@batch_app.command("rollback")
def batch_rollback(
    endpoint: BatchName,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Restore the batch endpoint's previous default."""
    change = api.batch_rollback(endpoint, workspace=workspace, project=project)
    Output(json).emit(change.to_dict(), lambda console: console.print(escape(change.message)))


@job_app.command("list")
def job_list(
    endpoint: Annotated[str | None, opt("--endpoint", help="Only this batch endpoint's jobs.")] = None,
    workspace: Annotated[str | None, opt("--workspace", "-w", help="Only this workspace's jobs.")] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """List batch jobs, newest first."""
    found = api.batch_jobs(endpoint, workspace=workspace, project=project)

    def human(console: Console) -> None:
        table = Table()
        for column in ("job", "endpoint", "deployment", "input", "status", "rows", "started"):
            table.add_column(column)
        for job in found:
            table.add_row(
                job.id, job.endpoint, job.deployment, job.input, job.status, f"{job.rows:,}", job.started_at
            )
        console.print(table)

    Output(json).emit({"jobs": [j.to_dict() for j in found]}, human)


@job_app.command("show")
def job_show(
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show one batch job."""
    job = api.batch_job(job_id, project=project)

    def human(console: Console) -> None:
        for key, value in job.to_dict().items():
            console.print(f"{key:<14} {escape(str(value))}")

    Output(json).emit(job.to_dict(), human)


@job_app.command("resume")
def job_resume(
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Finish a batch job that failed or was interrupted, reusing what it wrote."""
    output = Output(json)
    job = api.batch_resume(job_id, project=project, reporter=StepReporter(output) if not json else None)
    output.emit(
        job.to_dict(), lambda console: console.print(f"job {job.id}: {job.status}, {job.rows:,} rows")
    )


@monitor_app.command("check")
def monitor_check(
    endpoint: Annotated[
        str | None,
        opt("--endpoint", "-e", help="The online endpoint (default: prod's)."),
    ] = None,
    window: Annotated[
        str | None,
        opt("--window", help="How far back: 30m, 1h, 1d (default monitoring.window)."),
    ] = None,
    deployment: Annotated[
        str | None,
        opt("--deployment", "-d", help="Another deployment than the one taking most traffic."),
    ] = None,
    labels: Annotated[
        str | None,
        opt("--labels", help="A data asset of features with true labels, for the performance drop."),
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Compute drift, errors and latency of an endpoint over a window; exit 3 on insufficient evidence."""
    result = api.monitor_check(
        endpoint,
        workspace=workspace,
        window=window,
        deployment=deployment,
        labels=labels,
        project=project,
    )
    signals = result.signals

    def human(console: Console) -> None:
        console.print(
            f"{result.endpoint}/{result.deployment} ({result.model} v{result.version}, "
            f"{result.git_commit[:7]}): {result.samples} samples"
        )
        for key in (
            "max_psi",
            "max_psi_feature",
            "max_ks",
            "prediction_psi",
            "missing_rate",
            "error_rate",
            "p99_ms",
            "performance_drop",
        ):
            if signals.get(key) is not None:
                console.print(f"  {key:<16} {signals[key]}")

    output = Output(json)
    output.emit(result.to_dict(), human)
    output.github({"evidence": "ok", "check": str(result.id)})


@policy_app.command("evaluate")
def policy_evaluate(
    policy: Annotated[
        Path | None,
        opt("--policy", help="The policy file (default monitoring.policy)."),
    ] = None,
    endpoint: Annotated[
        str | None,
        opt("--endpoint", "-e", help="The endpoint (default: prod's)."),
    ] = None,
    act: Annotated[
        bool, typer.Option("--act", help="Carry out a rollback decision; say what to do for others.")
    ] = False,
    workspace: EndpointWorkspaceOption = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Decide from the latest monitoring check; the same evidence always gives the same decision ID."""
    decision = api.policy_evaluate(policy, endpoint=endpoint, workspace=workspace, act=act, project=project)

    def human(console: Console) -> None:
        reason = f" (rule: {decision.rule})" if decision.rule else ""
        console.print(f"decision {decision.decision_id}: {decision.action}{escape(reason)}")
        if decision.outcome:
            console.print(escape(decision.outcome))

    output = Output(json)
    output.emit(decision.to_dict(), human)
    output.github(
        {"decision_id": decision.decision_id, "action": decision.action},
        f"## Monitoring decision {decision.decision_id}: {decision.action}\n\n{decision.outcome or ''}",
    )

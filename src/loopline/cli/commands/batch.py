"""``data``, ``batch-endpoint``, ``batch-deployment``, ``batch``, ``monitor`` and ``policy``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.azureml_endpoints import read_batch_deployment, read_batch_endpoint
from loopline.cli.app import app
from loopline.cli.azure_files import (
    AzureFileOption,
    Deploying,
    deployment_from_file,
    endpoint_from_file,
    note_deployed,
)
from loopline.cli.options import (
    Call,
    ComputeOption,
    EndpointWorkspaceOption,
    LatestOption,
    ModelOption,
    VersionCommitOption,
    VersionOption,
    WorkspaceOption,
    command,
    opt,
)
from loopline.cli.output import StepReporter
from loopline.cli.sdk import api
from loopline.errors import IntegrityViolation, UsageError

if TYPE_CHECKING:
    from loopline.data import DataAsset

data_app = typer.Typer(help="Data assets: register, upload, list, show.", no_args_is_help=True)
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


@command(data_app, "register")
def data_register(
    call: Call,
    name: Annotated[str, typer.Argument(help="The data asset's name.")],
    path: Annotated[
        str, typer.Option("--path", help="A file or folder in a datastore: inbox://folder/or/file.")
    ],
) -> None:
    """Pin the files at a datastore path as a new version of a data asset (when they changed)."""
    asset, created = api.register_data(name, path, project=call.project)
    _said_registered(call, asset, created)


def _said_registered(call: Call, asset: DataAsset, created: bool) -> None:
    message = (
        f"registered {asset.name}:{asset.version} from {asset.reference} ({len(asset.manifest)} "
        f"file{'' if len(asset.manifest) == 1 else 's'}, {asset.digest[:19]}…)"
        if created
        else f"{asset.name}:{asset.version} already holds these files ({asset.reference}); nothing new"
    )
    call.emit({**asset.to_dict(), "created": created}, lambda console: console.print(escape(message)))


@command(data_app, "upload")
def data_upload(
    call: Call,
    name: Annotated[str, typer.Argument(help="The data asset's name.")],
    source: Annotated[Path, typer.Argument(help="A file or folder of this machine (CSV or Parquet).")],
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="With LOOPLINE_URL: copy the files into the inbox with this machine's credentials for it, "
            "not through the control plane (then pinned there).",
        ),
    ] = False,
) -> None:
    """Copy a file or folder into the inbox datastore and pin it as a new version of a data asset (when
    its bytes are new)."""
    if direct:
        # Copied from here with this machine's credentials, then pinned where loopline runs (here, or on
        # the control plane of LOOPLINE_URL), only if the bytes there are the ones read here.
        staged = api.stage_data(name, source, project=call.project)
        try:
            asset, created = api.register_data(
                name, staged.reference, digest=staged.digest, project=call.project
            )
        except IntegrityViolation:  # a file left there by an upload cut short, or changed there since
            staged = api.stage_data(name, source, overwrite=True, project=call.project)
            asset, created = api.register_data(
                name, staged.reference, digest=staged.digest, project=call.project
            )
    else:  # with LOOPLINE_URL, the files travel to the control plane, which copies them into the inbox
        asset, created = api.upload_data(name, source, project=call.project)
    _said_registered(call, asset, created)


@command(data_app, "list")
def data_list(
    call: Call,
    name: Annotated[
        str | None, typer.Argument(help="Only this asset's versions.", show_default=False)
    ] = None,
) -> None:
    """List data asset versions."""
    assets = api.list_data(name, project=call.project)

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

    call.emit({"assets": [a.to_dict() for a in assets]}, human)


@command(data_app, "show")
def data_show(
    call: Call,
    asset: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
) -> None:
    """Show one data asset version and its files."""
    from loopline.data import parse_asset

    name, version = parse_asset(asset)
    found = api.get_data(name, version, project=call.project)

    def human(console: Console) -> None:
        console.print(f"{found.name}:{found.version}  {found.reference}  {found.digest}")
        for entry in found.manifest:
            console.print(f"  {entry['sha256'][:12]}  {escape(entry['path'])}")

    call.emit(found.to_dict(), human)


@command(batch_endpoint_app, "create")
def batch_endpoint_create(
    call: Call,
    name: Annotated[str | None, typer.Argument(help="The batch endpoint's name (or the --file's).")] = None,
    workspace: WorkspaceOption = "dev",
    file: AzureFileOption = None,
) -> None:
    """Create a batch endpoint."""
    if file is not None:
        name = endpoint_from_file(call.output, file, read_batch_endpoint, name).name
    if name is None:
        raise UsageError("name the batch endpoint: loopline batch-endpoint create NAME (or --file FILE)")
    info = api.create_batch_endpoint(name, workspace, project=call.project)
    call.emit(info.to_dict(), lambda console: console.print(f"created batch endpoint {escape(name)}"))


@command(batch_endpoint_app, "list")
def batch_endpoint_list(
    call: Call,
) -> None:
    """List batch endpoints."""
    found = api.list_batch_endpoints(project=call.project)

    def human(console: Console) -> None:
        for info in found:
            console.print(
                f"{info.name}  {info.workspace}  default {info.default or '(none)'}  "
                f"deployments {', '.join(d.name for d in info.deployments) or '(none)'}"
            )

    call.emit({"batch_endpoints": [e.to_dict() for e in found]}, human)


@command(batch_endpoint_app, "show")
def batch_endpoint_show(
    call: Call,
    name: BatchName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Show a batch endpoint, its deployments and its default."""
    info = api.get_batch_endpoint(name, workspace=workspace, project=call.project)

    def human(console: Console) -> None:
        console.print(
            f"{info.name}  {info.workspace}  default {info.default or '(none)'}  "
            f"previous {info.previous or '(none)'}"
        )
        for deployment in info.deployments:
            console.print(
                f"  {deployment.name}  {deployment.model} v{deployment.version}  {deployment.git_commit[:7]}"
            )

    call.emit(info.to_dict(), human)


@command(batch_deployment_app, "create")
def batch_deployment_create(
    call: Call,
    endpoint: Annotated[
        str | None, typer.Argument(help="The batch endpoint's name (or the --file's).")
    ] = None,
    name: Annotated[str | None, typer.Argument(help="The deployment's name (or the --file's).")] = None,
    workspace: EndpointWorkspaceOption = None,
    file: AzureFileOption = None,
    model: ModelOption = None,
    version: VersionOption = None,
    commit: VersionCommitOption = None,
    latest: LatestOption = False,
    compute: ComputeOption = None,
    output_file: Annotated[
        str | None,
        opt(
            "--output-file",
            help="Also write each job's predictions as one CSV file of this name (predictions.csv), as "
            "Azure ML's append_row does; an Azure ML file's output_file_name gives it too.",
        ),
    ] = None,
) -> None:
    """Deploy a model version to a batch endpoint (files checked against their digest)."""
    given = Deploying(endpoint, name, model, version, latest=latest, output_file=output_file)
    chosen = deployment_from_file(call.output, file, read_batch_deployment, given, commit)
    if chosen.endpoint is None or chosen.name is None:
        raise UsageError(
            "name the batch endpoint and the deployment: loopline batch-deployment create ENDPOINT NAME"
        )
    info = api.create_batch_deployment(
        chosen.endpoint,
        chosen.name,
        workspace=workspace,
        model=chosen.model,
        version=chosen.version,
        commit=commit,
        compute=compute,
        latest=chosen.latest,
        output_file=chosen.output_file,
        project=call.project,
    )
    note_deployed(call.output, chosen, info.deployment(chosen.name), info.workspace)
    call.emit(
        info.to_dict(),
        lambda console: console.print(
            f"{escape(info.name)}: deployments {', '.join(d.name for d in info.deployments)}; "
            f"default {info.default}"
        ),
    )


@command(batch_deployment_app, "list")
def batch_deployment_list(
    call: Call,
    endpoint: BatchName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """List a batch endpoint's deployments."""
    batch_endpoint_show(call, endpoint, workspace)


@command(batch_app, "invoke")
def batch_invoke(
    call: Call,
    endpoint: BatchName,
    data: Annotated[str, typer.Option("--input", help="The data asset to score: NAME or NAME:VERSION.")],
    deployment: Annotated[
        str | None,
        opt("--deployment", "-d", help="A deployment other than the default."),
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    compute: ComputeOption = None,
    keep: Annotated[
        list[str] | None,
        opt(
            "--keep",
            help="An input column to carry into the predictions beside the answers (an ID to join them "
            "back by); repeat it for several.",
        ),
    ] = None,
) -> None:
    """Score a data asset in chunks; write Parquet predictions and their lineage to predictions://."""
    output = call.output
    job = api.batch_invoke(
        endpoint,
        data,
        workspace=workspace,
        deployment=deployment,
        compute=compute,
        keep=keep,
        project=call.project,
        reporter=StepReporter(output) if not call.json else None,
    )
    output.emit(
        job.to_dict(),
        lambda console: console.print(
            f"job {job.id}: {job.rows:,} rows scored by {job.deployment} (v{job.version}, "
            f"{job.git_commit[:7]}) into {job.output}"
        ),
    )
    output.github({"job": job.id, "output": job.output, "rows": str(job.rows)})


@command(batch_app, "promote")
def batch_promote(
    call: Call,
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
    reason: Annotated[str | None, opt("--reason", help="Why, for the audit log.")] = None,
    breaking_change: Annotated[
        str | None,
        opt(
            "--breaking-change",
            help="Promote a deployment whose answers would break what reads the default's predictions "
            "(another form, labels renamed), saying why (audited).",
        ),
    ] = None,
) -> None:
    """Make a deployment the batch endpoint's default."""
    change = api.batch_promote(
        endpoint,
        deployment,
        workspace=workspace,
        expected_current=expected_current,
        reason=reason,
        breaking_change=breaking_change,
        project=call.project,
    )
    call.emit(change.to_dict(), lambda console: console.print(escape(change.message)))


@command(batch_app, "rollback")
def batch_rollback(
    call: Call,
    endpoint: BatchName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Restore the batch endpoint's previous default."""
    change = api.batch_rollback(endpoint, workspace=workspace, project=call.project)
    call.emit(change.to_dict(), lambda console: console.print(escape(change.message)))


@command(job_app, "list")
def job_list(
    call: Call,
    endpoint: Annotated[str | None, opt("--endpoint", help="Only this batch endpoint's jobs.")] = None,
    workspace: Annotated[str | None, opt("--workspace", "-w", help="Only this workspace's jobs.")] = None,
    limit: Annotated[int | None, opt("--limit", "-n", min=1, help="Only the newest N jobs.")] = None,
) -> None:
    """List batch jobs, newest first."""
    found = api.batch_jobs(endpoint, workspace=workspace, limit=limit, project=call.project)

    def human(console: Console) -> None:
        table = Table()
        for column in ("job", "endpoint", "deployment", "input", "status", "rows", "started"):
            table.add_column(column)
        for job in found:
            table.add_row(
                job.id, job.endpoint, job.deployment, job.input, job.status, f"{job.rows:,}", job.started_at
            )
        console.print(table)

    call.emit({"jobs": [j.to_dict() for j in found]}, human)


@command(job_app, "show")
def job_show(
    call: Call,
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
) -> None:
    """Show one batch job."""
    job = api.batch_job(job_id, project=call.project)

    def human(console: Console) -> None:
        for key, value in job.to_dict().items():
            shown = ", ".join(value) or "(none)" if isinstance(value, tuple) else str(value)
            console.print(f"{key:<14} {escape(shown)}")

    call.emit(job.to_dict(), human)


@command(job_app, "resume")
def job_resume(
    call: Call,
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
    compute: ComputeOption = None,
) -> None:
    """Finish a batch job that failed or was interrupted, reusing what it wrote."""
    output = call.output
    reporter = StepReporter(output) if not call.json else None
    job = api.batch_resume(job_id, compute=compute, project=call.project, reporter=reporter)
    output.emit(
        job.to_dict(), lambda console: console.print(f"job {job.id}: {job.status}, {job.rows:,} rows")
    )


MonitoredName = Annotated[
    str | None,
    typer.Argument(help="The online endpoint (default: prod's); or --endpoint.", show_default=False),
]


def _one_endpoint(named: str | None, option: str | None) -> str | None:
    """The endpoint given as the argument or as ``--endpoint``; refused when they differ."""
    if named is not None and option is not None and named != option:
        raise UsageError(f"the endpoint is named twice ({named} and --endpoint {option}); name it once")
    return named or option


@command(monitor_app, "check")
def monitor_check(
    call: Call,
    name: MonitoredName = None,
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
) -> None:
    """Compute drift, errors and latency of an endpoint over a window; exit 3 on insufficient evidence."""
    result = api.monitor_check(
        _one_endpoint(name, endpoint),
        workspace=workspace,
        window=window,
        deployment=deployment,
        labels=labels,
        project=call.project,
    )
    signals = result.signals

    def human(console: Console) -> None:
        console.print(
            f"{result.endpoint}/{result.deployment} ({result.model} v{result.version}, "
            f"{result.git_commit[:7]}): "
            + (  # a chat model's or agent's requests are counted, not sampled
                f"{result.samples} samples"
                if result.samples or not signals.get("requests")
                else f"{signals['requests']:,} requests"
            )
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
        if str(signals.get("drift_reference", "")).startswith("none"):
            console.print(f"  drift not measured: {str(signals['drift_reference'])[len('none: ') :]}")
        if signals.get("labels") is not None:
            console.print(f"  {signals['metric']} on {signals['labels']}: {signals.get('current')}", end="")
            trained = signals.get("reference_metric")
            console.print(
                f"; the training's {trained}: {signals['reference']}"
                if trained is not None
                else f"; the training run logged no {signals['metric']} to compare it with"
            )

    output = call.output
    output.emit(result.to_dict(), human)
    output.github({"evidence": "ok", "check": str(result.id)})


@command(policy_app, "evaluate")
def policy_evaluate(
    call: Call,
    name: MonitoredName = None,
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
) -> None:
    """Decide from the latest monitoring check; the same evidence always gives the same decision ID."""
    decision = api.policy_evaluate(
        policy, endpoint=_one_endpoint(name, endpoint), workspace=workspace, act=act, project=call.project
    )

    def human(console: Console) -> None:
        reason = f" (rule: {decision.rule})" if decision.rule else ""
        console.print(f"decision {decision.decision_id}: {decision.action}{escape(reason)}")
        if decision.outcome:
            console.print(escape(decision.outcome))

    output = call.output
    output.emit(decision.to_dict(), human)
    output.github(
        {"decision_id": decision.decision_id, "action": decision.action},
        f"## Monitoring decision {decision.decision_id}: {decision.action}\n\n{decision.outcome or ''}",
    )

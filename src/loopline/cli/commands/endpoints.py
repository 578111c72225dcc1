"""``endpoint``, ``deployment`` and ``serve``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline import launch
from loopline.azureml_endpoints import read_deployment, read_endpoint
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
    EndpointWorkspaceOption,
    LatestOption,
    ModelOption,
    ProjectOption,
    VersionCommitOption,
    VersionOption,
    WorkspaceOption,
    command,
    opt,
)
from loopline.cli.output import Output, traffic_share
from loopline.cli.sdk import api
from loopline.errors import UsageError, on_path

if TYPE_CHECKING:
    from loopline.domain import EndpointInfo

endpoint_app = typer.Typer(
    help="Online endpoints: create, list, show, delete, keys, traffic, invoke.", no_args_is_help=True
)
deployment_app = typer.Typer(
    help="Deployments of an online endpoint: create, list, show, delete.", no_args_is_help=True
)
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(deployment_app, name="deployment")

EndpointName = Annotated[str, typer.Argument(help="The endpoint's name.")]


def _traffic_bar(info: EndpointInfo) -> str:
    parts = [f"{name} {percent}%" for name, percent in info.traffic.items() if percent]
    mirror = [f"mirror {name} {percent}%" for name, percent in info.mirror.items()]
    return ", ".join(parts + mirror) or "no traffic"


def show_endpoint(console: Console, info: EndpointInfo) -> None:
    """An endpoint and its deployments for humans."""
    console.print(f"[bold]{escape(info.name)}[/bold]  {info.workspace}  {escape(info.url)}  auth {info.auth}")
    console.print(f"traffic: {escape(_traffic_bar(info))}")
    if not info.deployments:
        console.print(
            "No deployments yet: `loopline deployment create "
            f"{escape(info.name)} blue --version N` (or --commit SHA)."
        )
        return
    table = Table()
    for column in ("deployment", "model", "version", "commit", "traffic"):
        table.add_column(column)
    for deployment in info.deployments:
        share = traffic_share(deployment.traffic, info.mirror.get(deployment.name))
        table.add_row(
            deployment.name, deployment.model, str(deployment.version), deployment.git_commit[:7], share
        )
    console.print(table)


@command(endpoint_app, "create")
def endpoint_create(
    call: Call,
    name: Annotated[str | None, typer.Argument(help="The endpoint's name (or the --file's).")] = None,
    workspace: WorkspaceOption = "dev",
    file: AzureFileOption = None,
    auth: Annotated[
        str | None, typer.Option("--auth", help="key: callers send a Bearer key; none: no auth.")
    ] = None,
    sensitive: Annotated[
        bool, typer.Option("--sensitive", help="Never keep samples of its requests for monitoring.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse unknown columns and fields and convert nothing (default: as MLflow's scoring does).",
        ),
    ] = False,
) -> None:
    """Create an online endpoint; its two keys are shown this once (stored only as hashes)."""
    if file is not None:
        described = endpoint_from_file(call.output, file, read_endpoint, name)
        name, auth = described.name, auth or described.auth
    if name is None:
        raise UsageError("name the endpoint: loopline endpoint create NAME (or --file endpoint.yml)")
    result = api.create_endpoint(
        name, workspace, auth=auth or "key", sensitive=sensitive, strict=strict, project=call.project
    )

    def human(console: Console) -> None:
        show_endpoint(console, result.endpoint)
        for slot, key in result.keys.items():
            console.print(f"{slot} key: [bold]{key}[/bold]")
        if result.keys:
            console.print("[yellow]Store the keys now: loopline keeps only their hashes.[/yellow]")

    output = call.output
    output.emit(result.to_dict(), human)
    output.github({"endpoint": name, "url": result.endpoint.url})


@command(endpoint_app, "list")
def endpoint_list(
    call: Call,
    workspace: Annotated[
        str | None,
        opt("--workspace", "-w", help="Only this workspace's endpoints."),
    ] = None,
) -> None:
    """List online endpoints with their URLs (where their workspace's server answers) and traffic."""
    endpoints = api.list_endpoints(workspace, located=True, project=call.project)

    def human(console: Console) -> None:
        if not endpoints:
            console.print("No endpoints: `loopline endpoint create NAME --workspace dev`.")
            return
        table = Table()
        for column in ("endpoint", "workspace", "url", "traffic"):
            table.add_column(column)
        for info in endpoints:
            table.add_row(info.name, info.workspace, info.url, _traffic_bar(info))
        console.print(table)

    call.emit({"endpoints": [e.to_dict() for e in endpoints]}, human)


@command(endpoint_app, "show")
def endpoint_show(
    call: Call,
    name: EndpointName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Show an endpoint's URL (where its workspace's server answers), deployments, traffic and mirror."""
    info = api.get_endpoint(name, workspace=workspace, located=True, project=call.project)
    call.emit(info.to_dict(), lambda console: show_endpoint(console, info))


@command(endpoint_app, "update")
def endpoint_update(
    call: Call,
    name: EndpointName,
    workspace: EndpointWorkspaceOption = None,
    strict: Annotated[
        bool | None,
        opt(
            "--strict/--no-strict",
            help="Refuse unknown columns and fields and convert nothing, or check as MLflow's scoring does.",
        ),
    ] = None,
    sensitive: Annotated[
        bool | None,
        opt(
            "--sensitive/--not-sensitive",
            help="Never keep samples of its requests for monitoring, or keep them.",
        ),
    ] = None,
) -> None:
    """Change an endpoint's settings; its servers follow within a second."""
    if strict is None and sensitive is None:
        raise UsageError("say what to change: --strict/--no-strict or --sensitive/--not-sensitive")
    info = api.update_endpoint(
        name, workspace=workspace, strict=strict, sensitive=sensitive, project=call.project
    )
    call.emit(info.to_dict(), lambda console: show_endpoint(console, info))


@command(endpoint_app, "delete")
def endpoint_delete(
    call: Call,
    name: EndpointName,
    workspace: EndpointWorkspaceOption = None,
    force: Annotated[bool, typer.Option("--force", help="Delete its deployments too.")] = False,
) -> None:
    """Delete an endpoint (one with deployments only with --force)."""
    info = api.delete_endpoint(name, workspace=workspace, force=force, project=call.project)
    call.emit({"deleted": info.to_dict()}, lambda console: console.print(f"Deleted endpoint {escape(name)}."))


@command(endpoint_app, "retire")
def endpoint_retire(
    call: Call,
    name: EndpointName,
    reason: Annotated[str, opt("--reason", help="Why, for the audit log and the archived report.")],
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Retire an endpoint with evidence: archive its final report (deployments, a day's traffic and
    errors, releases, last monitoring check) in the shared registry, then remove it, its deployments and
    keys."""
    done = api.retire_endpoint(name, reason=reason, workspace=workspace, project=call.project)
    call.emit(
        done.to_dict(),
        lambda console: console.print(
            escape(f"retired endpoint {name} ({done.workspace}); its final report: {done.evidence_uri}"),
            soft_wrap=True,
        ),
    )


@command(endpoint_app, "keys")
def endpoint_keys(
    call: Call,
    name: EndpointName,
    workspace: EndpointWorkspaceOption = None,
    regenerate: Annotated[
        str | None,
        opt("--regenerate", help="Replace this key (primary or secondary); the other keeps working."),
    ] = None,
) -> None:
    """List an endpoint's keys by prefix, or regenerate one (shown this once)."""
    result = api.endpoint_keys(name, workspace=workspace, regenerate=regenerate, project=call.project)

    def human(console: Console) -> None:
        for listed in result.keys:
            console.print(f"{listed['slot']:<10} {listed['prefix']:<14} made {listed['created_at']}")
        for slot, key in result.regenerated.items():
            console.print(f"new {slot} key: [bold]{key}[/bold]")
            console.print("[yellow]Store it now: loopline keeps only its hash.[/yellow]")

    call.emit(result.to_dict(), human)


@command(endpoint_app, "traffic")
def endpoint_traffic(
    call: Call,
    name: EndpointName,
    workspace: EndpointWorkspaceOption = None,
    shares: Annotated[
        list[str] | None,
        typer.Argument(
            help="DEPLOYMENT=PERCENT for each deployment that takes traffic (the others get 0); they must "
            "sum to 100.",
            show_default=False,
        ),
    ] = None,
    mirror: Annotated[
        str | None,
        opt(
            "--mirror",
            help="DEPLOYMENT=PERCENT: copy up to 50% of requests to a deployment without live traffic "
            "(its answers are discarded); 'none' stops mirroring.",
        ),
    ] = None,
    reason: Annotated[str | None, opt("--reason", help="Why, for the audit log.")] = None,
) -> None:
    """Set an endpoint's traffic split and mirror; show it when no shares are given."""
    if not shares and mirror is None:
        info = api.get_endpoint(name, workspace=workspace, project=call.project)
    else:
        info = api.set_traffic(
            name,
            shares or None,
            workspace=workspace,
            mirror=[mirror] if mirror else None,
            reason=reason,
            project=call.project,
        )
    output = call.output
    output.emit(
        info.to_dict(), lambda console: console.print(f"{escape(name)}: {escape(_traffic_bar(info))}")
    )
    output.github(
        {"endpoint": name, "traffic": orjson.dumps(info.traffic).decode()},
        f"## Traffic of `{name}`\n\n{_traffic_bar(info)}",
    )


# A request file's kind by its suffix: tables as the scoring server takes them, anything else as JSON.
_BODY_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".pq": "application/vnd.apache.parquet",
}


@command(endpoint_app, "invoke")
def endpoint_invoke(
    call: Call,
    name: EndpointName,
    request_file: Annotated[
        Path,
        typer.Option(
            "--request-file",
            "-f",
            help="The request body: JSON, or a table by its suffix (.csv, .parquet) or --csv; '-' is stdin.",
        ),
    ],
    workspace: EndpointWorkspaceOption = None,
    deployment: Annotated[
        str | None,
        opt("--deployment", "-d", help="Send it to this deployment, bypassing the traffic split."),
    ] = None,
    route: Annotated[
        str, typer.Option("--route", help="invocations (MLflow style) or score (Azure ML style).")
    ] = "invocations",
    csv: Annotated[bool, typer.Option("--csv", help="The body is CSV.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to give a server that is still starting (e.g. just after `serve &`).",
        ),
    ] = 0,
) -> None:
    """Send one scoring request to a served endpoint, with loopline's own key."""
    with on_path("read", request_file, "give a file of the request's body, or - for stdin"):
        body = sys.stdin.buffer.read() if str(request_file) == "-" else request_file.read_bytes()
    result = api.invoke_endpoint(
        name,
        body,
        workspace=workspace,
        deployment=deployment,
        route=route,
        content_type="text/csv" if csv else _BODY_TYPES.get(request_file.suffix.lower(), "application/json"),
        wait=wait,
        project=call.project,
    )

    def human(console: Console) -> None:
        source = f"{result.deployment} (model v{result.model_version}, {str(result.git_commit)[:7]})"
        console.print(f"{result.status} from {escape(source)} in {result.seconds * 1000:.1f} ms")
        console.print_json(orjson.dumps(result.body).decode())

    call.emit(result.to_dict(), human)
    if not result.ok:
        raise typer.Exit(1)


DeploymentName = Annotated[str, typer.Argument(help="The deployment's name (for example blue or green).")]


@command(deployment_app, "create")
def deployment_create(
    call: Call,
    endpoint: Annotated[str | None, typer.Argument(help="The endpoint's name (or the --file's).")] = None,
    name: Annotated[
        str | None, typer.Argument(help="The deployment's name, for example blue (or the --file's).")
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    file: AzureFileOption = None,
    model: ModelOption = None,
    version: VersionOption = None,
    commit: VersionCommitOption = None,
    latest: LatestOption = False,
    traffic: Annotated[
        int | None,
        opt(
            "--traffic",
            help="Give it this share of traffic now, scaling the "
            "others down (default: 0, or 100 for the first).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check", help="Load the model and answer its input example before deploying."
        ),
    ] = True,
) -> None:
    """Deploy a model version of the endpoint's workspace (files checked against their digest)."""
    given = Deploying(endpoint, name, model, version, latest=latest)
    chosen = deployment_from_file(call.output, file, read_deployment, given, commit)
    if chosen.endpoint is None or chosen.name is None:
        raise UsageError("name the endpoint and the deployment: loopline deployment create ENDPOINT NAME")
    name = chosen.name
    info = api.create_deployment(
        chosen.endpoint,
        name,
        workspace=workspace,
        model=chosen.model,
        version=chosen.version,
        commit=commit,
        traffic=traffic,
        check=check,
        latest=chosen.latest,
        project=call.project,
    )
    output = call.output
    deployed = info.deployment(name)
    note_deployed(call.output, chosen, deployed, info.workspace)
    output.emit(info.to_dict(), lambda console: show_endpoint(console, info))
    if deployed is not None:
        output.github(
            {"deployment": name, "version": str(deployed.version), "git_commit": deployed.git_commit}
        )


@command(deployment_app, "list")
def deployment_list(
    call: Call,
    endpoint: EndpointName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """List an endpoint's deployments."""
    info = api.get_endpoint(endpoint, workspace=workspace, project=call.project)
    call.emit(
        {"endpoint": endpoint, "deployments": [d.to_dict() for d in info.deployments]},
        lambda console: show_endpoint(console, info),
    )


@command(deployment_app, "show")
def deployment_show(
    call: Call,
    endpoint: EndpointName,
    name: DeploymentName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Show one deployment: model version, commit, digest, traffic, and what answers it in each running
    serving process (a compiled form or the model's own predict, and why)."""
    from loopline.errors import NotFound

    info = api.get_endpoint(endpoint, workspace=workspace, serving=True, project=call.project)
    deployment = info.deployment(name)
    if deployment is None:
        raise NotFound(f"endpoint '{endpoint}' has no deployment named '{name}'")
    data: dict[str, Any] = deployment.to_dict()

    def human(console: Console) -> None:
        for key, value in data.items():
            if key != "serving":
                console.print(f"{key:<15} {escape(str(value))}")
        for path in deployment.serving or ():
            console.print(f"{'serving':<15} {escape(path.path)} [dim]({escape(path.replica)})[/dim]")
            if path.environment:
                from loopline.model_environment import said

                console.print(f"{'':<15} [yellow]{escape(said(path.environment))}[/yellow]")
        if not deployment.serving:
            console.print(f"{'serving':<15} not reported: no running serving process has loaded it")

    call.emit(data, human)


@command(deployment_app, "delete")
def deployment_delete(
    call: Call,
    endpoint: EndpointName,
    name: DeploymentName,
    workspace: EndpointWorkspaceOption = None,
) -> None:
    """Remove a deployment that takes no traffic."""
    info = api.delete_deployment(endpoint, name, workspace=workspace, project=call.project)
    call.emit(info.to_dict(), lambda console: console.print(f"Deleted {escape(endpoint)}/{escape(name)}."))


@app.command()
def serve(
    workspace: WorkspaceOption = "dev",
    host: Annotated[
        str | None,
        opt(
            "--host", help="Interface to listen on (default: from the workspace's endpoints_url, 127.0.0.1)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        opt(
            "--port",
            "-p",
            help="Port (default: from endpoints_url; prod 8700, dev 8701, test 8702).",
            min=1,
            max=65535,
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    project: ProjectOption = None,
) -> None:
    """Serve every online endpoint of a workspace, following changes as they happen, until Ctrl-C."""

    def starting(url: str) -> None:
        Output(False).note(f"serving the endpoints of {workspace} at {url} (Ctrl-C to stop)")

    launch.serve(workspace, host=host, port=port, workers=workers, project=project, starting=starting)

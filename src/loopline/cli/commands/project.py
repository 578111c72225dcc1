"""``init``, ``up``, ``status`` and ``history``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import Call, JsonOption, ModelOption, command, key_values, opt
from loopline.cli.output import Output, StepReporter, shown, traffic_share
from loopline.cli.sdk import api
from loopline.domain import ModelVersionInfo, Tier
from loopline.errors import UsageError

if TYPE_CHECKING:
    from loopline.audit import AuditRecord


@app.command()
def init(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="A new or empty folder to create the sample project in; with --existing, the repository "
            "(default: the current folder).",
            show_default=False,
        ),
    ] = None,
    existing: Annotated[
        bool,
        typer.Option(
            "--existing",
            help="Set up loopline in a repository that already trains with MLflow, instead of writing the "
            "sample: find the entry point, run it once, write loopline.yaml, a gate and the workflows.",
        ),
    ] = False,
    command: Annotated[
        str | None,
        opt(
            "--command",
            help="With --existing: the training command, when it cannot be found (e.g. 'python src/fit.py').",
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        opt(
            "--input",
            help="With --existing: NAME=PATH, a local copy of the data the training reads as input NAME "
            "(an Azure ML job's azureml: data asset, or {inputs.NAME} in --command), for the one run init "
            "makes. Repeat for each input.",
        ),
    ] = None,
    from_run: Annotated[
        str | None,
        opt(
            "--from-run",
            help="With --existing: the id of a run the training made before (as MLflow shows it), or "
            "'latest' (the store's newest finished run that logged a model); what it logged is read "
            "instead of running the training again.",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        opt(
            "--tracking-uri",
            help="With --from-run: the MLflow store the run is in (default: MLFLOW_TRACKING_URI, else the "
            "repository's mlflow.db or mlruns/).",
        ),
    ] = None,
    tier: Annotated[
        Tier,
        typer.Option(
            "--tier", "-t", help="experimentation (dev), simple (dev + prod) or full (dev + test + prod)."
        ),
    ] = Tier.SIMPLE,
    name: Annotated[
        str | None,
        opt("--name", help="Project name (default: the folder's name)."),
    ] = None,
    model: ModelOption = None,
    git: Annotated[
        bool, typer.Option("--git/--no-git", help="Run `git init` when not inside a repository.")
    ] = True,
    json: JsonOption = False,
) -> None:
    """Write a runnable sample project, or set up an existing repository with --existing.

    The sample: loopline.yaml, train.py, params, a gate, tests and a notebook."""
    if existing:
        copies = key_values(
            inputs, "--input {item}: give NAME=PATH (the input's name, a local copy of its data)", empty=False
        )
        found = _Found(command, copies, from_run, tracking_uri)
        _init_existing(directory or Path("."), tier, name, model, found, json)
        return
    if directory is None:
        raise UsageError("name the folder to create the project in: loopline init DIR (or --existing)")
    given = [n for n, v in {"--command": command, "--input": inputs, "--from-run": from_run}.items() if v]
    if given:
        raise UsageError(f"{given[0]} goes with --existing; the sample project trains with python train.py")
    if tracking_uri is not None:
        raise UsageError("--tracking-uri goes with --existing --from-run")
    result = api.init(directory, tier, name=name, model=model, git=git)

    def human(console: Console) -> None:
        console.print(
            f"Created [bold]{escape(result.project)}[/bold] ({result.tier.value} tier) in "
            f"{escape(str(result.path))}: {len(result.files)} files."
        )
        console.print("Next:")
        console.print(f"  cd {escape(str(result.path))}")
        console.print("  loopline up")
        console.print("  git add -A && git commit -m 'first model'")
        console.print("  loopline inner-loop")

    Output(json).emit(result.to_dict(), human)


@dataclass(frozen=True)
class _Found:
    """How ``init --existing`` learns what the training logs: the command, its inputs, an earlier run."""

    command: str | None
    inputs: dict[str, str]
    from_run: str | None
    tracking_uri: str | None


def _init_existing(
    directory: Path, tier: Tier, name: str | None, model: str | None, found: _Found, json: bool
) -> None:
    output = Output(json)
    if found.tracking_uri is not None and found.from_run is None:
        raise UsageError("--tracking-uri names the store of --from-run RUN_ID: give the run too")
    result = api.init_existing(
        directory,
        tier,
        name=name,
        model=model,
        command=found.command,
        inputs=found.inputs,
        from_run=found.from_run,
        tracking_uri=found.tracking_uri,
        reporter=StepReporter(output, show_output=False),
    )

    def human(console: Console) -> None:
        console.print(
            f"Set up [bold]{escape(result.project)}[/bold] ({result.tier.value} tier): training "
            f"`{escape(result.command)}` logs '{escape(result.artifact_path)}', registered as "
            f"{escape(result.model)}."
        )
        for written in result.written:
            console.print(f"  + {escape(written)}")
        for kept in result.kept:
            console.print(f"  = {escape(kept)} (exists; left as it is)")
        for note in result.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
        upload = ", upload its inputs (notes above)" if result.inputs else ""
        console.print(f"Next: loopline up{upload}, commit these files, loopline inner-loop")

    output.emit(result.to_dict(), human)


@command(app)
def up(
    call: Call,
) -> None:
    """Create the tier's workspaces, the shared registry, the datastores; running it again changes nothing.

    After the project folder is moved or renamed, it points the local MLflow stores at its new place."""
    output = call.output
    result = api.up(call.project, reporter=StepReporter(output) if not call.json else None)

    def human(console: Console) -> None:
        if not result.changed:
            console.print(f"{escape(result.project)} ({result.tier}): everything exists; nothing changed.")
            return
        console.print(f"{escape(result.project)} ({result.tier}): created")
        for item in result.created:
            console.print(f"  + {escape(item)}")

    output.emit(result.to_dict(), human)
    output.github({"changed": str(result.changed).lower()})


def _short(location: str, root: Path) -> str:
    """A location inside the project shown relative to it."""
    prefix = "sqlite:///" if location.startswith("sqlite:///") else ""
    path = location.removeprefix(prefix)
    if path.startswith(str(root) + "/"):
        return f"{prefix}./{path[len(str(root)) + 1 :]}"
    return location


NEWEST = 5  # versions of each model and workspace `status` shows (and every one an alias points at)


def _shown(
    models: tuple[ModelVersionInfo, ...], everything: bool
) -> tuple[list[ModelVersionInfo], list[str]]:
    """The versions to list, by workspace and model: the newest ``NEWEST`` and those with an alias (the
    one in production, say), all with ``everything``; and how many older ones each model leaves out."""
    if everything:
        return list(models), []
    groups: dict[tuple[str, str], list[ModelVersionInfo]] = {}
    for model in models:
        groups.setdefault((model.workspace, model.name), []).append(model)
    rows: list[ModelVersionInfo] = []
    left_out = []
    for (workspace, name), versions in groups.items():
        newest = {v.version for v in sorted(versions, key=lambda v: v.version)[-NEWEST:]}
        kept = [v for v in versions if v.version in newest or v.aliases]
        if left := len(versions) - len(kept):
            left_out.append(f"{left} of {name} in {workspace}")
        rows += kept
    return rows, left_out


def _models_table(status: api.Status, everything: bool) -> Table:
    table = Table(title="Model versions", title_justify="left")
    for column in (
        "workspace",
        "model",
        "version",
        "commit",
        "branch",
        "aliases",
        "validation",
        "provenance",
    ):
        table.add_column(column)
    shown, left_out = _shown(status.models, everything)
    if left_out:
        table.caption = f"Older versions not listed: {escape('; '.join(left_out))} (--all lists them)"
        table.caption_justify = "left"
    for model in shown:
        commit = model.short_commit + (" (dirty)" if model.git_dirty else "")
        table.add_row(
            model.workspace,
            model.name,
            str(model.version),
            commit,
            model.git_branch,
            ", ".join(model.aliases),
            "; ".join(filter(None, [model.validation_status, "withdrawn" if model.withdrawn else ""])),
            _provenance(model.provenance.value, model.provenance_detail),
        )
    return table


def _provenance(level: str, detail: dict[str, Any]) -> str:
    """``uploaded by dev (claimed: accuracy)``: the level, who, and what loopline did not compute."""
    parts = [level]
    if detail.get("by") and level != "built-here":
        parts.append(f"by {detail['by']}")
    if detail.get("claimed"):
        parts.append(f"(claimed: {', '.join(detail['claimed'])})")
    return " ".join(parts)


@command(app)
def status(
    call: Call,
    everything: Annotated[
        bool,
        opt(
            "--all",
            help=f"List every model version; without it, the newest {NEWEST} of each model in each "
            "workspace and those an alias points at (--json always holds every one).",
        ),
    ] = False,
) -> None:
    """Show the tier, workspaces, stores, the model versions with their commits, and what each online and
    batch endpoint serves."""
    result = api.status(call.project)

    def human(console: Console) -> None:
        console.print(
            f"[bold]{escape(result.project)}[/bold]  tier [bold]{result.tier.value}[/bold]  "
            f"workspaces {', '.join(result.workspaces)} + shared registry"
        )
        if not result.provisioned:
            console.print("Not provisioned yet: run `loopline up`.")
            return
        stores = Table(title="Stores", title_justify="left")
        stores.add_column("store")
        stores.add_column("tracking / registry")
        stores.add_column("model files")
        for name, store in result.stores.items():
            stores.add_row(
                name,
                _short(str(store["tracking_uri"]), result.root),
                _short(str(store["model_store"]), result.root),
            )
        console.print(stores)
        if result.models:
            console.print(_models_table(result, everything))
        else:
            console.print("No model versions yet: commit and run `loopline inner-loop`.")
        if result.endpoints:
            console.print(_endpoints_table(result.endpoints))
        if result.batch_endpoints:
            console.print(_batch_table(result.batch_endpoints))

    call.emit(result.to_dict(), human)


def _endpoints_table(endpoints: tuple[dict[str, Any], ...]) -> Table:
    """What each online endpoint serves: a row a deployment, with its model version and share of traffic
    (URLs: ``endpoint list``, which finds where each workspace's server answers)."""
    return _deployments_table(
        "Endpoints",
        ("traffic", lambda e, d: traffic_share(d["traffic"], e["mirror"].get(d["name"]))),
        endpoints,
    )


def _batch_table(endpoints: tuple[dict[str, Any], ...]) -> Table:
    """What each batch endpoint scores with: a row a deployment, the default marked."""
    return _deployments_table(
        "Batch endpoints", ("default", lambda e, d: "default" if d["name"] == e["default"] else ""), endpoints
    )


def _deployments_table(
    title: str,
    last: tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]],
    endpoints: tuple[dict[str, Any], ...],
) -> Table:
    """A row a deployment of each endpoint; ``last`` names the last column and what it says of one."""
    column, cell = last
    table = Table(title=title, title_justify="left")
    for name in ("workspace", "endpoint", "deployment", "model", "version", "commit", column):
        table.add_column(name)
    for endpoint in endpoints:
        for deployment in endpoint["deployments"] or [None]:
            if deployment is None:  # created, nothing deployed yet
                table.add_row(endpoint["workspace"], endpoint["name"], "", "", "", "", "no deployments")
                continue
            table.add_row(
                endpoint["workspace"],
                endpoint["name"],
                deployment["name"],
                deployment["model"],
                str(deployment["version"]),
                deployment["git_commit"][:7],
                cell(endpoint, deployment),
            )
    return table


def _event_line(record: AuditRecord) -> str:
    event = record.event
    parts = [
        f"[dim]#{record.seq} {event.at:%Y-%m-%d %H:%M:%S}[/dim]",
        shown(event.actor),
        f"[bold]{event.kind}[/bold]",
    ]
    if event.workspace:
        parts.append(event.workspace)
    if event.model:
        parts.append(shown(event.model) + (f" v{event.version}" if event.version else ""))
    if event.git_commit:
        parts.append(f"[yellow]{event.git_commit[:7]}[/yellow]")
    if event.source or event.target:
        parts.append(shown(f"{event.source or ''} → {event.target or ''}".strip(" →")))
    if event.outcome != "ok":
        color = "green" if event.outcome == "passed" else "red"
        parts.append(f"[{color}]{event.outcome}[/{color}]")
    if event.reason:
        parts.append(f"— {shown(event.reason)}")
    return "  ".join(parts)


@command(app)
def history(
    call: Call,
    commit: Annotated[
        str | None,
        opt("--commit", help="Only events of commits starting with these digits (or of a git ref: HEAD)."),
    ] = None,
    workspace: Annotated[
        str | None,
        opt("--workspace", "-w", help="Only events in this workspace."),
    ] = None,
    model: ModelOption = None,
    kind: Annotated[
        str | None,
        opt("--kind", help="Only events of this kind (registered, shared, gate-evaluated, refused, ...)."),
    ] = None,
    actor: Annotated[str | None, opt("--actor", help="Only events by this user.")] = None,
    limit: Annotated[int | None, opt("--limit", "-n", min=1, help="Only the newest N events.")] = None,
    before: Annotated[
        int | None,
        opt(
            "--before",
            min=1,
            help="Only events before #SEQ (with -n: the page older than one starting there).",
        ),
    ] = None,
) -> None:
    """Show the audit log: who changed what, when, from where to where, for which commit, and why."""
    records = api.history(
        call.project,
        commit=commit,
        workspace=workspace,
        model=model,
        kind=kind,
        actor=actor,
        limit=limit,
        before=before,
    )

    def human(console: Console) -> None:
        if not records:
            console.print("No events match.")
            return
        for record in records:
            console.print(_event_line(record), soft_wrap=True)

    call.emit({"events": [r.to_dict() for r in records]}, human)

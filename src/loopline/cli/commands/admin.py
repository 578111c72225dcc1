"""``audit verify``, ``audit checkpoint``, ``migrate-state`` and ``migrate-tracking``: loopline's own
database and the workspaces' MLflow databases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from loopline.cli.app import app
from loopline.cli.options import Call, command, opt
from loopline.cli.sdk import api
from loopline.errors import UsageError, on_path

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@command(audit_app, "verify")
def audit_verify(
    call: Call,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint file kept elsewhere (a CI artifact) to check the log against as well.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Recompute the audit log's chain and check it against the newest checkpoint; name every edited,
    deleted or reordered event, and a log cut short (exit 1)."""
    found = api.audit_verify(checkpoint=_read_checkpoint(checkpoint), project=call.project)

    def human(console: Console) -> None:
        if found.intact:
            console.print(f"audit log intact: {found.events} events, each chained to the one before")
            return
        console.print(f"[bold red]audit log altered[/bold red]: {len(found.problems)} problem(s)")
        for problem in found.problems:
            console.print(f"  {escape(problem['problem'])}", soft_wrap=True)

    call.emit(found.to_dict(), human)
    if not found.intact:
        raise typer.Exit(1)


def _read_checkpoint(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    with on_path("read the checkpoint", path, "give a file `loopline audit checkpoint --to FILE` wrote"):
        text = path.read_bytes()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not a checkpoint (not JSON)") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a checkpoint (not a JSON object)")
    return data


@command(audit_app, "checkpoint")
def audit_checkpoint(
    call: Call,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", help="Also write the checkpoint to this file (to keep as a CI artifact).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Sign the head of the audit log with the audit key and keep it in audit.checkpoints (and --to)."""
    written = api.audit_checkpoint(project=call.project)
    if to is not None:
        to.write_bytes(orjson.dumps(written.checkpoint(), option=orjson.OPT_INDENT_2))

    def human(console: Console) -> None:
        where = [w for w in (written.stored, str(to) if to else None) if w]
        console.print(
            escape(f"checkpoint of event #{written.seq} ({written.hash[:12]}) signed at {written.at}")
            + (
                escape(f"; kept in {', '.join(where)}")
                if where
                else "; set audit.checkpoints or pass --to to keep it"
            )
        )

    call.emit(written.to_dict(), human)


@command(app, "migrate-state")
def migrate_state(
    call: Call,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="SQLAlchemy URL of an empty database, e.g. postgresql+psycopg://user@host/loopline."
        ),
    ],
) -> None:
    """Copy loopline's database, history and all, into an empty database; then point state.url at it."""
    result = api.migrate_state(to, project=call.project)
    total = sum(result.rows.values())

    def human(console: Console) -> None:
        console.print(
            escape(f"copied {total} rows from {result.source} to {result.target}; the audit chain is intact")
        )
        console.print(escape(f"next: set state.url (or LOOPLINE_STATE__URL) to {result.target}"))

    call.emit(result.to_dict(), human)


@command(app, "migrate-tracking")
def migrate_tracking(
    call: Call,
    workspace: Annotated[
        str, opt("--workspace", "-w", help="The workspace (dev, test, prod) or shared, the registry.")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="URL of an empty database, e.g. postgresql://user@host/mlflow_dev (created if missing).",
        ),
    ],
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Copy the runs' artifacts to this folder or URL (wasbs://, s3://, gs://) as well.",
        ),
    ] = None,
) -> None:
    """Copy a workspace's MLflow database, version numbers and all, into an empty database.

    Then point the workspace's tracking_uri at it (the command prints the setting)."""
    result = api.migrate_tracking(workspace, to, artifacts=artifacts, project=call.project)
    total = sum(result.rows.values())

    def human(console: Console) -> None:
        console.print(
            escape(
                f"copied {total} rows of {workspace}'s MLflow store from {result.source} to {result.target}"
            )
        )
        if result.artifacts:
            console.print(escape(f"copied {result.files} files of the runs' artifacts to {result.artifacts}"))
        keys = {"tracking_uri": result.target, "artifact_location": result.artifacts}
        for key, value in keys.items():
            if value:
                variable = f"LOOPLINE_WORKSPACES__{workspace.upper()}__{key.upper()}"
                console.print(escape(f"next: set workspaces.{workspace}.{key} (or {variable}) to {value}"))

    call.emit(result.to_dict(), human)


@command(app, "migrate-models")
def migrate_models(
    call: Call,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="The model store to copy every version's files to: a folder, az://, s3://, gs://."
        ),
    ],
) -> None:
    """Copy every version's model files into another model store and name them there.

    loopline's rows and MLflow's version sources name the new place; then point model_store at it."""
    result = api.migrate_models(to, project=call.project)

    def human(console: Console) -> None:
        console.print(
            escape(
                f"{result.target} holds the files of {result.digests} model(s) ({result.copied} copied now); "
                f"renamed in {sum(result.rows.values())} loopline rows and "
                f"{sum(result.mlflow.values())} MLflow versions"
            )
        )
        if result.kept:
            console.print(escape(f"MLflow sources kept in {', '.join(result.kept)} (a tracking server's)"))
        if result.missing:
            console.print(
                escape(
                    "left as they were, their files in no store this machine reads: "
                    + ", ".join(result.missing)
                )
            )
        console.print(
            escape(
                f"next: set model_store of every workspace (or LOOPLINE_WORKSPACES__<W>__MODEL_STORE) to {to}"
            )
        )

    call.emit(result.to_dict(), human)


k8s_app = typer.Typer(help="Kubernetes manifests for this instance.", no_args_is_help=True)
app.add_typer(k8s_app, name="k8s")


@command(k8s_app, "render")
def k8s_render(
    call: Call,
    workspace: Annotated[
        str | None,
        opt("--workspace", "-w", help="Render the serving replicas of this workspace."),
    ] = None,
    control_plane: Annotated[
        bool, typer.Option("--control-plane", help="Render the control plane instead.")
    ] = False,
    image: Annotated[str, typer.Option("--image", help="The loopline image (built from the Dockerfile).")] = (
        "loopline:0.1.0"
    ),
    namespace: Annotated[
        str, typer.Option("--namespace", help="The namespace of every object.")
    ] = "loopline",
    replicas: Annotated[
        int, typer.Option("--replicas", help="Serving replicas (the autoscaler's minimum).")
    ] = 2,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes per serving replica.")] = 2,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the manifests to this file instead of stdout.", dir_okay=False),
    ] = None,
) -> None:
    """Kubernetes manifests: a workspace's serving replicas (Deployment, Service, autoscaler, disruption
    budget) or the control plane, with the configuration in a ConfigMap and credentials from the Secret
    loopline-credentials."""
    if (workspace is None) == (not control_plane):
        raise UsageError("name what to render: --workspace W (serving replicas) or --control-plane")
    manifests = api.k8s_render(
        workspace, image=image, namespace=namespace, replicas=replicas, workers=workers, project=call.project
    )
    if out is not None:
        out.write_text(manifests.text)

    def human(console: Console) -> None:
        if out is not None:
            console.print(escape(f"wrote {len(manifests.documents)} objects to {out}"))
        else:
            console.print(manifests.text, markup=False, highlight=False, soft_wrap=True, end="")

    call.emit(manifests.to_dict(), human)


@command(app, "migrate-datastores")
def migrate_datastores(
    call: Call,
    inbox: Annotated[
        str | None,
        opt("--inbox", help="The inbox's new place: a folder, az://, s3://, gs://."),
    ] = None,
    predictions: Annotated[
        str | None,
        opt("--predictions", help="The predictions datastore's new place: a folder, az://, s3://, gs://."),
    ] = None,
) -> None:
    """Copy the datastores' files to new places and check every data asset there.

    Then point datastores.inbox.url (and datastores.predictions.url) at them; nothing is deleted."""
    result = api.migrate_datastores(inbox=inbox, predictions=predictions, project=call.project)

    def human(console: Console) -> None:
        for name, target in result.targets.items():
            held, copied = result.files[name], result.copied[name]
            console.print(escape(f"{target} holds the {held} files of {name} ({copied} copied now)"))
        console.print(escape(f"{result.assets} data asset version(s) found whole at their new place"))
        for name, target in result.targets.items():
            variable = f"LOOPLINE_DATASTORES__{name.upper()}__URL"
            console.print(escape(f"next: set datastores.{name}.url (or {variable}) to {target}"))

    call.emit(result.to_dict(), human)

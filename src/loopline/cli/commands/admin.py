"""``audit verify`` and ``migrate-state``: loopline's own database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from loopline.cli.app import app
from loopline.cli.options import JsonOption, ProjectOption
from loopline.cli.output import Output
from loopline.cli.sdk import api

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(project: ProjectOption = None, json: JsonOption = False) -> None:
    """Recompute the audit log's hash chain; name every edited, deleted or reordered event (exit 1)."""
    found = api.audit_verify(project=project)

    def human(console: Console) -> None:
        if found.intact:
            console.print(f"audit log intact: {found.events} events, each chained to the one before")
            return
        console.print(f"[bold red]audit log altered[/bold red]: {len(found.problems)} problem(s)")
        for problem in found.problems:
            console.print(f"  {escape(problem['problem'])}", soft_wrap=True)

    Output(json).emit(found.to_dict(), human)
    if not found.intact:
        raise typer.Exit(1)


@app.command("migrate-state")
def migrate_state(
    to: Annotated[
        str,
        typer.Option(
            "--to", help="SQLAlchemy URL of an empty database, e.g. postgresql+psycopg://user@host/loopline."
        ),
    ],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Copy loopline's database, history and all, into an empty database; then point state.url at it."""
    result = api.migrate_state(to, project=project)
    total = sum(result.rows.values())

    def human(console: Console) -> None:
        console.print(
            escape(f"copied {total} rows from {result.source} to {result.target}; the audit chain is intact")
        )
        console.print(escape(f"next: set state.url (or LOOPLINE_STATE__URL) to {result.target}"))

    Output(json).emit(result.to_dict(), human)

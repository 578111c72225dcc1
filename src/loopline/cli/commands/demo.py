"""``demo``: the whole lifecycle on a fresh sample project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import JsonOption
from loopline.cli.output import Output, StepReporter
from loopline.domain import Tier


@app.command()
def demo(
    tier: Annotated[Tier, typer.Option("--tier", "-t", help="The tier of the demo project.")] = Tier.FULL,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Create the project in this new or empty folder and leave it there to explore.",
            show_default=False,
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run the model lifecycle on a fresh sample project and show where every version stands."""
    from loopline import api

    output = Output(json)
    result = api.demo(tier, keep, reporter=StepReporter(output, show_output=False))

    def human(console: Console) -> None:
        table = Table(title=f"Demo finished in {result.seconds:.0f} s", title_justify="left")
        for column in ("workspace", "model", "version", "commit", "aliases", "validation"):
            table.add_column(column)
        for model in result.models:
            table.add_row(
                model["workspace"],
                model["name"],
                str(model["version"]),
                model["git_commit"][:7],
                ", ".join(model["aliases"]),
                model["validation_status"] or "",
            )
        console.print(table)
        if result.kept:
            console.print(f"The project is in {escape(str(result.path))}; try `loopline status` there.")

    output.emit(result.to_dict(), human)

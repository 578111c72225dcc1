"""``demo``: the whole lifecycle on a fresh sample project, through its workflow files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline import launch
from loopline.cli.app import app
from loopline.cli.options import JsonOption, opt
from loopline.cli.output import Output, StepReporter
from loopline.domain import Tier


@app.command()
def demo(
    tier: Annotated[Tier, typer.Option("--tier", "-t", help="The tier of the demo project.")] = Tier.FULL,
    keep: Annotated[
        Path | None,
        opt("--keep", help="Create the project in this new or empty folder and leave it there to explore."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run the model lifecycle on a fresh sample project through its workflow files, and show the outcome."""
    output = Output(json)
    result = launch.demo(tier, keep, reporter=StepReporter(output, show_output=False))

    def human(console: Console) -> None:
        table = Table(title=f"The demo finished in {result.seconds:.0f} s", title_justify="left")
        for column in ("commit", "change", "dev", "registry", "validation", "prod", "traffic"):
            table.add_column(column)
        for row in result.commits:
            prod = (
                ""
                if row["prod"] is None
                else f"v{row['prod']}" + (" (production)" if row["production"] else "")
            )
            traffic = "" if row["traffic"] is None else f"{row['traffic']}%"
            table.add_row(
                f"{row['label']} {row['git_commit'][:7]}",
                row["change"],
                "" if row["dev"] is None else f"v{row['dev']}",
                "" if row["registry"] is None else f"v{row['registry']}",
                row["validation"] or "",
                prod,
                traffic,
            )
        console.print(table)
        if result.traffic:
            console.print(
                "prod endpoint traffic: " + ", ".join(f"{k} {v}%" for k, v in result.traffic.items())
            )
        if result.kept:
            console.print(
                f"The project is in {escape(str(result.path))}: try `loopline status`, `loopline history` "
                "and `loopline serve --workspace prod` there."
            )

    output.emit(result.to_dict(), human)

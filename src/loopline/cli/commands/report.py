"""``report experiment``: dev's recent runs as Markdown with charts, for people and pull requests."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from loopline.cli.app import app
from loopline.cli.options import Call, command, opt
from loopline.cli.sdk import api

report_app = typer.Typer(help="Reports: the experiments of dev.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@command(report_app, "experiment")
def experiment(
    call: Call,
    last: Annotated[
        int, typer.Option("--last", "-n", min=1, max=100, help="How many of dev's newest runs.")
    ] = 20,
    out: Annotated[
        str | None,
        opt("--out", help="The folder to write to (default: .loopline/reports/experiment-<time>)."),
    ] = None,
    comment: Annotated[
        bool,
        typer.Option("--comment", help="In GitHub Actions, also post it on the run's pull request."),
    ] = False,
    pull_request: Annotated[
        int | None, typer.Option("--pr", min=1, help="Post it on this pull request (with GITHUB_TOKEN).")
    ] = None,
) -> None:
    """Dev's newest runs: their metrics and commits, the trend from the previous commit, a chart per
    metric; Markdown to a folder, and to the step summary in GitHub Actions."""
    report = api.report_experiment(
        last=last, out=out, comment=comment, pull_request=pull_request, project=call.project
    )

    def human(console: Console) -> None:
        counts = f"{len(report.runs)} run(s), {len(report.charts)} chart(s)"
        console.print(escape(f"wrote {report.folder}/experiment.md ({counts})"), soft_wrap=True)
        if report.comment_url:
            console.print(escape(f"commented on the pull request: {report.comment_url}"), soft_wrap=True)
        elif comment:
            console.print("no pull request to comment on (not a pull_request or merge_group run)")

    call.emit(report.to_dict(), human)
    call.output.github({"report": f"{report.folder}/experiment.md"}, report.github_markdown)

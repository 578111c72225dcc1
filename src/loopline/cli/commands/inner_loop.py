"""``inner-loop``: train at a commit, check the gate, register in dev and share to the registry."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import Call, ComputeOption, ModelOption, command
from loopline.cli.output import StepReporter
from loopline.cli.sdk import api
from loopline.errors import GateFailed


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def gate_rows(gate: dict[str, Any]) -> list[tuple[str, str, str, str, bool]]:
    """Each check of a gate as (metric, value, min, max, passed)."""
    return [
        (
            check["metric"],
            "missing" if check["value"] is None else f"{check['value']:.4f}",
            _bound(check["min"]),
            _bound(check["max"]),
            bool(check["passed"]),
        )
        for check in gate["checks"]
    ]


def gate_table(gate: dict[str, Any]) -> Table:
    """The gate's checks as a table."""
    table = Table(title=f"Gate {gate['gate']}", title_justify="left")
    for column in ("metric", "value", "min", "max", "result"):
        table.add_column(column)
    for *cells, passed in gate_rows(gate):
        table.add_row(*cells, "[green]pass[/green]" if passed else "[red]FAIL[/red]")
    return table


def gate_markdown(gate: dict[str, Any]) -> str:
    """The gate's checks as a Markdown table for a GitHub step summary."""
    lines = ["| metric | value | min | max | result |", "|---|---|---|---|---|"]
    for *cells, passed in gate_rows(gate):
        lines.append("| " + " | ".join([*cells, "pass" if passed else "FAIL"]) + " |")
    return "\n".join(lines)


@command(app, "inner-loop")
def inner_loop(
    call: Call,
    model: ModelOption = None,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty",
            help="Run on uncommitted changes; the version is "
            "tagged git_dirty=true with a digest of the diff.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not show the training output.")] = False,
    compute: ComputeOption = None,
) -> None:
    """Train at the current commit, check the gate, register in dev and share to the shared registry."""
    output = call.output
    reporter = StepReporter(output, show_output=not quiet and not call.json)
    try:
        result = api.inner_loop(
            call.project, model=model, allow_dirty=allow_dirty, compute=compute, reporter=reporter
        )
    except GateFailed as exc:
        if not call.json and "gate" in exc.details:
            output.err.print(gate_table(exc.details["gate"]))
        output.github(
            {"registered": "false", "gate": "failed"},
            "## Inner loop: gate failed\n\n" + gate_markdown(exc.details["gate"]),
        )
        raise

    def human(console: Console) -> None:
        if result.gate is not None:
            console.print(gate_table(result.gate.to_dict()))
        style = "green" if result.created else "yellow"
        console.print(f"[{style}]{escape(result.message)}[/{style}]")

    output.emit(result.to_dict(), human)
    summary = [
        f"## Inner loop: {result.message}",
        "",
        f"- commit `{result.git_commit}` on `{result.git_branch}`" + (" (dirty)" if result.git_dirty else ""),
        f"- dev: {result.model} v{result.dev.version}",
        f"- registry: {result.model} v{result.shared.version}",
        f"- content digest `{result.shared.content_digest}`",
    ]
    if result.gate is not None:
        summary += ["", gate_markdown(result.gate.to_dict())]
    output.github(
        {
            "registered": str(result.created).lower(),
            "model": result.model,
            "git_commit": result.git_commit,
            "dev_version": str(result.dev.version),
            "registry_version": str(result.shared.version),
            "content_digest": result.shared.content_digest,
        },
        "\n".join(summary),
    )

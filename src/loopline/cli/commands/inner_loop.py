"""``inner-loop``: train at a commit, check the gate, register in dev and share to the registry."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import Call, ComputeOption, ModelOption, command, opt
from loopline.cli.output import StepReporter
from loopline.cli.sdk import api
from loopline.errors import GateFailed
from loopline.markdown import code, text


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
        lines.append("| " + " | ".join([*map(text, cells), "pass" if passed else "FAIL"]) + " |")
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
        f"## Inner loop: {text(result.message)}",
        "",
        f"- commit `{result.git_commit}` on {code(result.git_branch)}"
        + (" (dirty)" if result.git_dirty else ""),
        f"- dev: {text(result.model)} v{result.dev.version}",
        f"- registry: {text(result.model)} v{result.shared.version}",
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


@command(app)
def compare(
    call: Call,
    ranking: Annotated[
        str | None,
        opt("--ranking", "-r", help="Ranking file (default: model.ranking, ranking.yaml)."),
    ] = None,
    runs: Annotated[
        list[str] | None,
        opt("--runs", help="Rank these run IDs (repeat the option); default: the newest finished runs."),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", "-n", min=1, max=100, help="How many of dev's newest runs.")
    ] = 20,
    commit: Annotated[
        str | None, opt("--commit", help="Only runs of commits starting with these digits (or of a git ref).")
    ] = None,
) -> None:
    """Rank dev's runs by a primary metric, weighted secondary metrics and hard constraints."""
    result = api.compare(ranking, runs=runs, last=last, commit=commit, project=call.project)
    data = result.to_dict()

    def human(console: Console) -> None:
        metrics = result.ranking.metrics
        table = Table(title=f"Runs ranked by {result.ranking.name}", title_justify="left")
        for column in ("rank", "run", "commit", *metrics, "score", "note"):
            numeric = column in (*metrics, "score")
            table.add_column(column, justify="right" if numeric else "left", no_wrap=column != "note")
        for row in data["runs"]:
            values = [f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "-" for m in metrics]
            table.add_row(
                str(row["rank"] or "-"),
                row["run_id"][:8],
                (row["git_commit"] or "")[:7],
                *values,
                "" if row["score"] is None else f"{row['score']:.3f}",
                escape("; ".join(row["reasons"])) if row["reasons"] else "",
            )
        console.print(table)

    call.emit(data, human)


@command(app)
def sweep(
    call: Call,
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-t", min=1, help="Trials for this commit (default: sweep.trials)."),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-p",
            min=1,
            max=64,
            help="Trials at a time, each in its own git worktree of the commit (default: sweep.parallel).",
        ),
    ] = None,
    model: ModelOption = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Sweep uncommitted changes (recorded as for inner-loop).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not show the training output.")] = False,
    compute: ComputeOption = None,
) -> None:
    """Sweep the commit's hyperparameters (sweep: in loopline.yaml) with Optuna, then gate, register and
    share the best trial's model as inner-loop does; a killed sweep goes on where it stopped."""
    reporter = StepReporter(call.output, show_output=not quiet and not call.json)
    result = api.sweep(
        call.project, trials=trials, parallel=parallel, model=model, allow_dirty=allow_dirty, compute=compute,
        reporter=reporter,
    )  # fmt: skip

    def human(console: Console) -> None:
        if result.trials:
            table = Table(
                title=f"Sweep {result.study[:60]}: {result.direction} {result.metric}", title_justify="left"
            )
            for column in ("trial", "values", result.metric, "state", "run"):
                table.add_column(column, justify="right" if column == result.metric else "left")
            best = result.best.number if result.best else None
            for t in result.trials:
                table.add_row(
                    f"{t.number}{' *' if t.number == best else ''}", escape(t.shown),
                    "" if t.value is None else f"{t.value:.6g}", t.state, (t.run_id or "")[:8],
                )  # fmt: skip
            console.print(table)
        if result.inner_loop is not None:
            style = "green" if result.inner_loop.created else "yellow"
            console.print(f"[{style}]{escape(result.inner_loop.message)}[/{style}]")

    call.emit(result.to_dict(), human)

"""``workflow enabled``, ``workflow list``, ``workflow run``, ``workflow update`` and ``tier set``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import Call, command, key_values, opt
from loopline.cli.output import StepReporter
from loopline.cli.sdk import api
from loopline.domain import WORKFLOW_TIERS, Tier

workflow_app = typer.Typer(
    help="The GitHub workflows: is one on in this tier, list them, run one here, update them.",
    no_args_is_help=True,
)
tier_app = typer.Typer(help="The instance's tier: show it or change it.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(tier_app, name="tier")

*_FIRST, _LAST = WORKFLOW_TIERS
WorkflowName = Annotated[str, typer.Argument(help=f"{', '.join(_FIRST)} or {_LAST}.")]


@command(workflow_app, "enabled")
def workflow_enabled(
    call: Call,
    name: WorkflowName,
) -> None:
    """Say whether the instance's tier runs a workflow (GitHub output `enabled`); exit 0 either way."""
    switch = api.workflow_enabled(name, project=call.project)
    output = call.output
    output.emit(switch.to_dict(), lambda console: console.print(escape(switch.notice)))
    if not switch.enabled and os.environ.get("GITHUB_ACTIONS") and not call.json:
        print(f"::notice title=loopline::{switch.notice}")
    output.github({"enabled": str(switch.enabled).lower(), "tier": switch.tier.value})


@command(workflow_app, "list")
def workflow_list(
    call: Call,
) -> None:
    """List the workflows and whether this tier runs each."""
    switches = api.workflow_list(project=call.project)

    def human(console: Console) -> None:
        table = Table()
        table.add_column("workflow")
        table.add_column(f"{switches[0].tier.value} tier")
        for switch in switches:
            table.add_row(switch.workflow, "on" if switch.enabled else "off")
        console.print(table)

    call.emit({"workflows": [s.to_dict() for s in switches]}, human)


@command(workflow_app, "run")
def workflow_run(
    call: Call,
    name: WorkflowName,
    event: Annotated[
        str | None,
        opt(
            "--event",
            help="The triggering event (default workflow_dispatch "
            "when the file has it, else its first trigger).",
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        opt("--input", help="KEY=VALUE for a workflow_dispatch input; repeat for several."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not show the steps' output.")] = False,
) -> None:
    """Run a workflow file here, as a GitHub runner would: run steps, needs, if, outputs, inputs, summary."""
    output = call.output
    result = api.workflow_run(
        name,
        event=event,
        inputs=key_values(inputs, "--input '{item}' is not KEY=VALUE"),
        project=call.project,
        reporter=StepReporter(output, show_output=not quiet and not call.json),
    )

    def human(console: Console) -> None:
        for job in result.jobs:
            color = {"success": "green", "failure": "red"}.get(job.status, "yellow")
            outputs = ", ".join(f"{k}={v}" for k, v in job.outputs.items() if v)
            console.print(
                f"[{color}]{job.status:<8}[/{color}] {escape(job.id)}"
                + (f"  ({escape(outputs)})" if outputs else "")
            )
            for step in (s for s in job.steps if s.status == "failure" and s.note):
                console.print(
                    f"         step {escape(step.id)} ({escape(step.name)}): {escape(step.note or '')}"
                )
        if result.enabled is False:
            console.print(f"{escape(result.workflow)} is off in this tier: nothing ran after the gate.")
        verdict = "succeeded" if result.succeeded else "failed"
        console.print(f"{escape(result.workflow)} ({result.event}) {verdict} in {result.seconds:.0f} s")

    output.emit(result.to_dict(), human)
    if not result.succeeded:
        raise typer.Exit(1)


@command(workflow_app, "update")
def workflow_update(
    call: Call,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing: say what would change, and exit 1 if anything would."),
    ] = False,
) -> None:
    """Bring the workflow files to this loopline's templates, keeping your edits (conflicts are marked)."""
    result = api.workflow_update(check=check, project=call.project)

    def human(console: Console) -> None:
        for update in result.files:
            color = {"unchanged": "dim", "conflicts": "red", "unknown base": "red"}.get(
                update.outcome, "green"
            )
            verb = update.outcome if result.written or not update.changes else f"would be {update.outcome}"
            if update.outcome == "conflicts":
                verb = f"{update.conflicts} conflict(s) to resolve" + (
                    "" if result.written else " (would be)"
                )
            said = f"  ({escape(update.note)})" if update.note else ""
            console.print(f"[{color}]{escape(verb)}[/{color}] {escape(update.file)}{said}")
        if result.written and any(u.changes for u in result.files):
            console.print("Review the change with `git diff`, then commit it.")

    call.emit(result.to_dict(), human)
    conflicted = ", ".join(u.file for u in result.files if u.outcome == "conflicts")
    unknown = ", ".join(u.file for u in result.files if u.outcome == "unknown base")
    said = [f"{unknown}: not updated, as said above"] if unknown else []
    if conflicted:
        said.insert(
            0,
            f"{conflicted}: resolve the blocks between <<<<<<< and >>>>>>> (yours first, then loopline's), "
            "or `git checkout -- FILE` to keep yours as it was"
            if result.written
            else f"{conflicted}: an update would leave conflicts to resolve",
        )
    if said:
        call.output.err.print(f"error: {escape('; '.join(said))}", soft_wrap=True)
        raise typer.Exit(1)
    if check and any(u.changes for u in result.files):
        raise typer.Exit(1)


@command(tier_app, "show")
def tier_show(
    call: Call,
) -> None:
    """Show the instance's tier and its workspaces."""
    status = api.status(call.project)
    call.emit(
        {"tier": status.tier.value, "workspaces": list(status.workspaces)},
        lambda console: console.print(f"{status.tier.value}: {', '.join(status.workspaces)} + shared"),
    )


@command(tier_app, "set")
def tier_set(
    call: Call,
    tier: Annotated[Tier, typer.Argument(help="experimentation, simple or full.")],
) -> None:
    """Change the tier: provision new workspaces, refuse to drop one that serves; workflows unchanged."""
    output = call.output
    change = api.set_tier(
        tier, project=call.project, reporter=StepReporter(output) if not call.json else None
    )

    def human(console: Console) -> None:
        if not change.changed:
            console.print(f"Already {change.after.value}; nothing changed.")
            return
        console.print(
            f"Tier {change.before.value} → {change.after.value}. Commit loopline.yaml; the workflow files "
            "stay as they are."
        )
        if change.added:
            console.print(f"Added workspaces: {', '.join(change.added)}")
        if change.dropped:
            console.print(f"No longer in the tier (their stores are kept): {', '.join(change.dropped)}")

    output.emit(change.to_dict(), human)

"""``outer-loop test``, ``outer-loop prod``, ``approve``, ``approvals`` and ``rollback``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from loopline.cli.app import app
from loopline.cli.options import (
    Call,
    EndpointWorkspaceOption,
    ModelOption,
    command,
    opt,
)
from loopline.cli.output import Output, StepReporter, shown
from loopline.cli.sdk import api
from loopline.domain import parse_duration
from loopline.errors import GateFailed, Refused, UsageError
from loopline.markdown import text

if TYPE_CHECKING:
    from loopline.loops.approvals import ApprovalState
    from loopline.loops.release import ReleaseResult

outer_app = typer.Typer(help="The outer loops: validate in test, release to prod.", no_args_is_help=True)
app.add_typer(outer_app, name="outer-loop")

RetireOption = Annotated[
    str | None, opt("--retire", help="The retirement of this prod endpoint, instead of a commit's release.")
]
CommitOption = Annotated[
    str | None,
    opt(
        "--commit",
        help="The commit whose registry version to take (a SHA prefix of 7+, or a git ref such as a release's"
        " tag; default: HEAD). One without a"
        " version that changed none of training.paths since an ancestor with one takes that one's.",
    ),
]


@command(outer_app, "test")
def outer_loop_test(
    call: Call,
    commit: CommitOption = None,
    model: ModelOption = None,
) -> None:
    """Copy a commit's registry version into test, deploy it, and validate it through the endpoint."""
    output = call.output
    try:
        result = api.outer_loop_test(call.project, commit=commit, model=model, reporter=StepReporter(output))
    except GateFailed as exc:
        failed = exc.details.get("result", {})
        if not call.json and failed.get("report"):
            output.err.print(_report_markdown(failed), markup=False)
        output.github(
            {"validation_status": "failed", "git_commit": failed.get("git_commit", "")},
            _report_markdown(failed) if failed else None,
        )
        raise

    def human(console: Console) -> None:
        console.print(result.report_markdown, markup=False)
        console.print(f"[green]{escape(result.message)}[/green]")

    output.emit(result.to_dict(), human)
    output.github(
        {
            "validation_status": "passed",
            "git_commit": result.git_commit,
            "registry_version": str(result.registry_version),
            "report_uri": result.report_uri,
        },
        result.report_markdown,
    )


@command(outer_app, "report")
def outer_loop_report(
    call: Call,
    commit: CommitOption = None,
) -> None:
    """Show the newest validation report of a commit (Markdown; --json adds the figures)."""
    report = api.validation_report(commit, project=call.project)
    call.emit(report.to_dict(), lambda console: console.print(report.markdown, markup=False, highlight=False))


def _report_markdown(result: dict[str, Any]) -> str:
    from loopline.validation import ValidationFindings

    return ValidationFindings.from_dict(result["report"]).markdown()


def _canary(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:  # 10,50,100 as written, 10%,50%,100% or 10 50 100 as people also write it
        steps = [int(part.strip().removesuffix("%")) for part in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--canary '{text}' is not a list of percentages such as 10,50,100") from None
    if not steps:
        raise UsageError(f"--canary '{text}' must be increasing percentages ending at 100, such as 10,50,100")
    return steps  # the release checks them, for every caller


def _seconds(text: str | None, what: str) -> float | None:
    """Seconds as a number (``30``) or a duration (``90s``, ``5m``, ``1h``)."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return parse_duration(text, what).total_seconds()
    if not 0 <= seconds < math.inf:
        raise UsageError(f"{what} '{text}' is not a time to wait: give 0 or more seconds, or 90s, 5m, 1h")
    return seconds


def _show(console: Console, result: ReleaseResult) -> None:
    for step in result.steps:
        seen = f"{step.get('requests', 0)} requests" if step.get("seconds") else "not watched"
        verdict = step["breach"] or ("ok" if step.get("judged") else "too few requests to judge")
        console.print(f"  {step['percent']:>3}%  {seen}  {escape(str(verdict))}")
    style = "green" if result.changed else "yellow"
    console.print(f"[{style}]{escape(result.message)}[/{style}]")


def _batch_behind(output: Output, result: ReleaseResult) -> None:
    """Warn of each batch endpoint whose default still scores with another commit than the one released
    (or rolled back to), with the two commands that move it."""
    for behind in result.batch_behind:
        name, workspace = behind["endpoint"], behind["workspace"]
        output.warn(
            f"warning: batch endpoint {name} still scores with {behind['deployment']} (v{behind['version']}, "
            f"{behind['git_commit'][:7]}) by default; to score with {result.git_commit[:7]} too: `loopline "
            f"batch-deployment create {name} NAME --commit {result.git_commit[:7]} --workspace {workspace}`, "
            f"then `loopline batch promote {name} NAME --workspace {workspace}`"
        )


def _release_summary(title: str, result: ReleaseResult) -> str:
    lines = [
        f"## {title}: {text(result.message)}",
        "",
        f"- endpoint `{result.endpoint}`, deployment `{result.deployment}`",
        f"- commit `{result.git_commit}`, version {result.version}",
    ]
    if result.previous:
        lines.append(f"- previous: `{result.previous['deployment']}` ({result.previous['git_commit'][:7]})")
    for moved in result.batch_moved:
        lines.append(
            f"- batch endpoint `{moved['endpoint']}` scores with `{moved['deployment']}` by default now"
        )
    for behind in result.batch_behind:
        lines.append(
            f"- batch endpoint `{behind['endpoint']}` still scores with `{behind['deployment']}` "
            f"({behind['git_commit'][:7]}) by default"
        )
    if result.steps:
        lines += ["", "| traffic | requests | errors | p99 ms | verdict |", "|---|---|---|---|---|"]
        lines += [
            f"| {s['percent']}% | {s.get('requests', '')} | {s.get('errors', '')} | {s.get('p99_ms', '')} | "
            f"{text(s['breach'] or 'ok')} |"
            for s in result.steps
        ]
    return "\n".join(lines)


@command(outer_app, "prod")
def outer_loop_prod(
    call: Call,
    commit: CommitOption = None,
    model: ModelOption = None,
    canary: Annotated[
        str | None,
        opt(
            "--canary",
            help="Traffic steps for the new deployment, e.g. 10,50,100 (default: release.canary, else at "
            "once).",
        ),
    ] = None,
    watch: Annotated[
        str | None,
        opt(
            "--watch",
            help="How long to watch each step's error rate and p99 latency: seconds, or 90s, 5m, 1h "
            "(default: release.watch_seconds with canary steps).",
        ),
    ] = None,
    override_reason: Annotated[
        str | None,
        opt(
            "--override-reason",
            help="Full tier: release a version that did not pass test, saying why (audited).",
        ),
    ] = None,
    approval_wait: Annotated[
        str | None,
        opt(
            "--approval-wait",
            help="Where releases need approvals: wait this long for them (e.g. 30m) before refusing.",
        ),
    ] = None,
    breaking_change: Annotated[
        str | None,
        opt(
            "--breaking-change",
            help="Release a version that would break the live one's clients (it refuses what they send, "
            "answers in another form, or renames its labels), saying why (audited).",
        ),
    ] = None,
) -> None:
    """Release a commit's registry version to prod: deploy at 0%, smoke-test, move traffic, watch."""
    output = call.output
    try:
        result = api.outer_loop_prod(
            call.project,
            commit=commit,
            model=model,
            canary=_canary(canary),
            watch=_seconds(watch, "--watch"),
            override_reason=override_reason,
            approval_wait=parse_duration(approval_wait, "--approval-wait").total_seconds()
            if approval_wait
            else 0,
            breaking_change=breaking_change,
            reporter=StepReporter(output),
        )
    except Refused as exc:
        output.github({"released": "false"}, f"## Release refused\n\n{text(exc.message)}")
        raise
    output.emit(result.to_dict(), lambda console: _show(console, result))
    _batch_behind(output, result)
    output.github(
        {
            "released": str(result.changed).lower(),
            "git_commit": result.git_commit,
            "version": str(result.version),
            "deployment": result.deployment,
        },
        _release_summary("Outer loop prod", result),
    )


@command(app)
def approve(
    call: Call,
    reason: Annotated[str, opt("--reason", help="Why, for the audit log and the requester.")],
    commit: CommitOption = None,
    model: ModelOption = None,
    retire: RetireOption = None,
    deny: Annotated[
        bool, typer.Option("--deny", help="Deny the release instead (it then stays refused).")
    ] = False,
) -> None:
    """Approve (or deny) releasing a commit's registry version to prod (or retiring a prod endpoint), as
    an approver of release.approvals who did not ask for it; it holds for that version and validation (or
    that endpoint) until it expires."""
    done = api.approve(commit, reason=reason, deny=deny, model=model, retire=retire, project=call.project)
    call.emit(
        done.to_dict(),
        lambda c: c.print(
            escape(
                f"{done.decision} {_subject(done.model, done.version, done.git_commit)} as {done.approver}, "
                f"until {done.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        ),
    )


def _subject(model: str, version: int, commit: str) -> str:
    if commit == "retire":
        return f"retiring prod's endpoint {model.removeprefix('endpoint:')}"
    return f"{model} v{version} ({commit[:7]}) for prod"


def _show_approvals(console: Console, state: ApprovalState) -> None:
    given = len(state.approved)
    console.print(
        shown(
            f"{_subject(state.model, state.version, state.git_commit)}: {given} of {state.required} "
            "approval(s)"
            + (f", asked by {state.requested_by}" if state.requested_by else "")
            + f"; approvers: {', '.join(state.approvers)}"
        )
    )
    for a in state.standing:
        until = f"{a.expires_at:%Y-%m-%d %H:%M} UTC"
        where = f" ({a.run_url})" if a.run_url else ""
        console.print(shown(f"  {a.decision} by {a.approver}{where}, until {until}: {a.reason}"))


@command(app)
def approvals(
    call: Call,
    commit: CommitOption = None,
    model: ModelOption = None,
    retire: RetireOption = None,
) -> None:
    """Where a commit's release to prod (or a prod endpoint's retirement) stands: approvals needed and
    standing (unexpired), who asked."""
    state = api.approvals(commit, model=model, retire=retire, project=call.project)
    call.emit(state.to_dict(), lambda c: _show_approvals(c, state))


ReasonOption = Annotated[str, opt("--reason", help="Why, for the audit log.")]


@command(app)
def withdraw(
    call: Call, reason: ReasonOption, commit: CommitOption = None, model: ModelOption = None
) -> None:
    """Withdraw a commit's model version in every workspace: no release, promotion, deployment or rollback
    takes it until it is reinstated (what is live stays live: roll it back)."""
    done = api.withdraw(commit, reason=reason, model=model, project=call.project)
    call.emit(done.to_dict(), lambda c: c.print(shown(_decision(done))))


@command(app)
def reinstate(
    call: Call, reason: ReasonOption, commit: CommitOption = None, model: ModelOption = None
) -> None:
    """Reinstate a withdrawn model version: releases, deployments and rollbacks take it again."""
    done = api.reinstate(commit, reason=reason, model=model, project=call.project)
    call.emit(done.to_dict(), lambda c: c.print(shown(_decision(done))))


@command(app)
def withdrawals(call: Call, model: ModelOption = None) -> None:
    """Every withdrawal and reinstatement of a model version, newest first."""
    found = api.withdrawals(model=model, project=call.project)

    def show(console: Console) -> None:
        if not found:
            console.print("no version was ever withdrawn")
        for decision in found:
            console.print(shown(f"{decision.created_at:%Y-%m-%d %H:%M} UTC  {_decision(decision)}"))

    call.emit({"withdrawals": [d.to_dict() for d in found]}, show)


def _decision(done: Any) -> str:
    return (
        f"{done.action} {done.model} v{done.version} ({done.git_commit[:7]}) by {done.actor}: {done.reason}"
    )


@command(app)
def rollback(
    call: Call,
    commit: Annotated[
        str | None,
        opt(
            "--commit",
            help="Return to the version of this commit (a SHA prefix of 7+, or a git ref: HEAD~1, a tag). One"
            " without a version in prod"
            " that changed none of training.paths since an ancestor with one returns to that one's.",
        ),
    ] = None,
    previous: Annotated[
        bool,
        typer.Option(
            "--previous",
            help="Return to the release before the live one (during a release: to what was live before it).",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        opt("--endpoint", help="The endpoint (default: the prod endpoint)."),
    ] = None,
    workspace: EndpointWorkspaceOption = None,
    model: ModelOption = None,
    reason: Annotated[str | None, opt("--reason", help="Why, for the audit log.")] = None,
) -> None:
    """Move all traffic back to an earlier version, redeploying it first if it is no longer loaded; a
    release of the endpoint in progress is stopped first."""
    output = call.output
    result = api.rollback(
        call.project,
        commit=commit,
        previous=previous,
        endpoint=endpoint,
        workspace=workspace,
        model=model,
        reason=reason,
        reporter=StepReporter(output),
    )
    output.emit(result.to_dict(), lambda console: _show(console, result))
    _batch_behind(output, result)
    output.github(
        {
            "rolled_back": str(result.changed).lower(),
            "git_commit": result.git_commit,
            "deployment": result.deployment,
        },
        _release_summary("Model rollback", result),
    )

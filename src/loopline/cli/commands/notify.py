"""``notifications``: the webhooks told of events, and the events they did not take."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.app import app
from loopline.cli.options import Call, command
from loopline.cli.sdk import api
from loopline.errors import EXIT_REFUSED

notifications_app = typer.Typer(
    help="Webhooks told of events (notifications: in loopline.yaml).", no_args_is_help=True
)
app.add_typer(notifications_app, name="notifications")

WebhookOption = Annotated[
    str | None, typer.Option("--webhook", help="Only this webhook (a name under notifications.webhooks).")
]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} to {name}" for name, n in sorted(counts.items())) or "none"


@command(notifications_app, "deliver")
def deliver(
    call: Call,
    linger: Annotated[
        float, typer.Option("--linger", min=0, help="Then wait this many seconds for more events.")
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Send every webhook the events it has not had, in order, waiting out retries (writes start this by
    themselves; run it from cron, or to send what waits now)."""
    sent = api.notifications_deliver(linger=linger, project=call.project)
    if quiet:
        return

    def human(console: Console) -> None:
        if sent.busy:
            console.print("another process is delivering; it sends what waits")
            return
        console.print(escape(f"delivered {_counts(sent.delivered)}; kept as failed {_counts(sent.failed)}"))

    call.emit(sent.to_dict(), human)


@command(notifications_app, "failed")
def failed(
    call: Call,
    webhook: WebhookOption = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Send each once more, in order; those delivered are forgotten.")
    ] = False,
) -> None:
    """The events webhooks did not take after every try; exits 1 when any remain."""
    found = (
        api.notifications_retry(webhook=webhook, project=call.project)
        if retry
        else api.notifications_failed(webhook=webhook, project=call.project)
    )

    def human(console: Console) -> None:
        if not found:
            console.print("every event was delivered" if retry else "no event failed")
            return
        table = Table("webhook", "event", "kind", "workspace", "tries", "failed at", "last error")
        for f in found:
            table.add_row(
                escape(f.webhook), str(f.seq), f.kind, f.workspace or "", str(f.attempts),
                f.failed_at.isoformat(timespec="seconds"), escape(f.error),
            )  # fmt: skip
        console.print(table)

    call.emit({"failed": [f.to_dict() for f in found]}, human)
    if found:
        raise typer.Exit(EXIT_REFUSED)

"""Telling webhooks of events: the audit log is the outbox.

Every change of state is already an ordered, durable audit event, so a webhook needs only a cursor: the
newest event it was given. A deliverer (a process of its own, started when a write that appended events
commits, or ``loopline notifications deliver``) sends each webhook the events after its cursor in order,
tries a failed one again after a wait that doubles, and after the last try keeps it as failed
(``loopline notifications failed``, ``--retry``) and goes on with the next. One deliverer runs at a time
(a lock in the database); the writer never waits for it, so a slow or failing receiver never holds up or
fails a move.

The ``mlflow`` format is MLflow's webhook payload (``entity``, ``action``, ``timestamp``, ``data``), signed
as MLflow signs it (``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``), so a
receiver written for MLflow's registry webhooks takes loopline's: a registered, shared or promoted version
is ``model_version.created``; a release or rollback in prod moves the ``production`` alias
(``model_version_alias.created``). Other events come as ``entity: loopline`` with the event's kind as the
action. Every payload also carries the whole audit event under ``loopline``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from loopline import audit
from loopline.audit import AuditRecord
from loopline.config import NotificationsConfig, Settings, WebhookConfig
from loopline.domain import utcnow
from loopline.errors import ConfigError, LockTimeout, NotFound
from loopline.net import http_client
from loopline.state import Database, as_utc, locks
from loopline.state.schema import notification_cursors, notification_failures

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Failure",
    "Sent",
    "deliver",
    "failures",
    "kick",
    "message",
    "payload",
    "retry_failures",
    "signature",
]

LOCK = "notifications"
_log = logging.getLogger(__name__)
_VERSION_CREATED = {"registered", "shared", "promoted"}
_ALIAS_MOVED = {"released", "rolled-back"}
_children: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class Failure:
    """An event a webhook did not take after every try."""

    id: int
    webhook: str
    seq: int
    kind: str
    attempts: int
    error: str
    failed_at: datetime
    workspace: str | None = None  # the event's, so each reader sees the failures of what they may read

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**self.__dict__, "failed_at": self.failed_at.isoformat()}


@dataclass(frozen=True)
class Sent:
    """What one delivery round did: events delivered, and events kept as failed, per webhook."""

    delivered: dict[str, int]
    failed: dict[str, int]
    busy: bool = False
    """Another process was delivering (it sends these events too)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


# ---- what is sent -----------------------------------------------------------------------------------


def message(record: AuditRecord, project: str) -> str:
    """One line for people: ``proj: released proj-classifier v3 (3f2a9c1) in prod by alice``."""
    event = record.event
    parts = [f"{project}: {record.kind.replace('-', ' ')}"]
    if event.model:
        parts.append(event.model + (f" v{event.version}" if event.version is not None else ""))
    if event.git_commit:
        parts.append(f"({event.git_commit[:7]})")
    if event.workspace:
        parts.append(f"in {event.workspace}")
    parts.append(f"by {event.actor}")
    line = " ".join(parts)
    if event.outcome != "ok":
        line += f" [{event.outcome}]"
    return line + (f": {event.reason}" if event.reason else "")


def _mlflow_shape(record: AuditRecord) -> tuple[str, str, dict[str, Any]]:
    event = record.event
    if record.kind in _VERSION_CREATED and event.model and event.version is not None:
        tags = {"git_commit": event.git_commit or "", "loopline.workspace": event.workspace or ""}
        data = {
            "name": event.model,
            "version": str(event.version),
            "source": event.target or "",
            "run_id": event.details.get("run_id"),
            "tags": tags,
            "description": None,
        }
        return "model_version", "created", data
    if (
        record.kind in _ALIAS_MOVED
        and event.workspace == "prod"
        and event.model
        and event.version is not None
    ):
        return (
            "model_version_alias",
            "created",
            {"name": event.model, "alias": "production", "version": str(event.version)},
        )
    return "loopline", record.kind, record.to_dict()


def payload(record: AuditRecord, webhook: WebhookConfig, project: str) -> dict[str, Any]:
    """The JSON body ``webhook`` is sent for ``record``."""
    text = message(record, project)
    if webhook.format == "slack":
        # Slack reads &, < and > as markup (<!channel>, <https://…|a link's words>): what a caller wrote
        # in a reason is shown as written, never as a mention of everyone or a link dressed as another.
        return {"text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
    if webhook.format == "teams":
        # A TextRun takes no Markdown ([words](https://…) would be a link dressed as another); a
        # TextBlock would.
        run = {"type": "TextRun", "text": text}
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [{"type": "RichTextBlock", "inlines": [run]}],
        }
        attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        return {"type": "message", "attachments": [attachment]}
    entity, action, data = _mlflow_shape(record)
    return {
        "entity": entity,
        "action": action,
        "timestamp": record.event.at.isoformat(),
        "data": data,
        "loopline": {**record.to_dict(), "project": project, "message": text},
    }


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's webhook signature: ``v1,`` and the base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>``."""
    signed = f"{delivery_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def _from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable, "")
    if not value:
        raise ConfigError(f"the environment variable {variable} ({what}) is not set")
    return value


def _send(client: httpx.Client, name: str, webhook: WebhookConfig, record: AuditRecord, project: str) -> None:
    """POST ``record`` to ``webhook``; raise with the reason when it did not take it (any answer but 2xx)."""
    url = webhook.url or _from_env(webhook.url_env or "", f"the URL of webhook {name}")
    body = json.dumps(payload(record, webhook, project), separators=(",", ":"), default=str)
    # The event's id names the delivery: a receiver sees the same id when an event comes again.
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": record.event_id,
        "X-MLflow-Timestamp": str(int(time.time())),
        "X-Loopline-Event": record.kind,
        "X-Loopline-Seq": str(record.seq),
    }
    if webhook.secret_env:
        secret = _from_env(webhook.secret_env, f"the signing key of webhook {name}")
        headers["X-MLflow-Signature"] = signature(
            secret, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body
        )
    answer = client.post(url, content=body.encode(), headers=headers)
    if not answer.is_success:
        raise _Refused(f"HTTP {answer.status_code}: {answer.text[:200]}")


class _Refused(Exception):
    pass


def _attempt(
    client: httpx.Client, name: str, webhook: WebhookConfig, record: AuditRecord, project: str
) -> str | None:
    """None when ``webhook`` took ``record``, else why not."""
    import httpx

    try:
        _send(client, name, webhook, record, project)
    except (httpx.HTTPError, _Refused, ConfigError) as exc:
        return str(exc) or type(exc).__name__
    return None


# ---- delivery -----------------------------------------------------------------------------------------


def _client(config: NotificationsConfig) -> httpx.Client:
    return http_client(timeout=config.timeout_seconds, follow_redirects=False)


def _cursor(db: Database, name: str) -> dict[str, Any]:
    with db.read() as connection:
        row = (
            connection.execute(select(notification_cursors).where(notification_cursors.c.webhook == name))
            .mappings()
            .first()
        )
    if row is not None:
        return dict(row)
    # A webhook seen for the first time starts at the newest event: it is not sent the past.
    start = audit.newest_seq(db)
    _start_cursors(db, [name], start)
    return {"webhook": name, "last_seq": start, "attempts": 0, "next_attempt_at": None, "last_error": None}


def _start_cursors(db: Database, names: list[str], last_seq: int) -> None:
    # Read first: after a webhook's first event every change comes here, and needs no write lock for it.
    with db.read() as connection:
        if set(names) <= set(connection.execute(select(notification_cursors.c.webhook)).scalars()):
            return
    with db.write() as connection:
        known = set(connection.execute(select(notification_cursors.c.webhook)).scalars())
        for name in names:
            if name not in known:
                connection.execute(
                    insert(notification_cursors).values(webhook=name, last_seq=last_seq, attempts=0)
                )


def _move(db: Database, name: str, **values: Any) -> None:
    with db.write() as connection:
        connection.execute(
            update(notification_cursors).where(notification_cursors.c.webhook == name).values(**values)
        )


def _wait(config: NotificationsConfig, attempts: int) -> float:
    return float(min(config.retry_seconds * 2 ** (attempts - 1), config.max_retry_seconds))


def _deliver_one(
    settings: Settings, db: Database, client: httpx.Client, name: str, sent: Sent
) -> datetime | None:
    """Send webhook ``name`` the events after its cursor, in order, until one fails; return when the
    failed one is due again (None when nothing waits)."""
    config = settings.config.notifications
    webhook = config.webhooks[name]
    cursor = _cursor(db, name)
    due = cursor["next_attempt_at"]
    if due is not None and as_utc(due) > utcnow():
        return as_utc(due)
    attempts = int(cursor["attempts"])
    skipped = None
    for record in audit.following(db, int(cursor["last_seq"])):
        if record.kind not in webhook.events:
            skipped = record.seq
            continue
        error = _attempt(client, name, webhook, record, settings.config.project)
        if error is None:
            _move(db, name, last_seq=record.seq, attempts=0, next_attempt_at=None, last_error=None)
            sent.delivered[name] = sent.delivered.get(name, 0) + 1
            attempts, skipped = 0, None
            continue
        attempts += 1
        if attempts >= config.attempts:
            _keep_failed(db, name, record.seq, attempts, error)
            sent.failed[name] = sent.failed.get(name, 0) + 1
            attempts, skipped = 0, None
            continue
        due = utcnow() + timedelta(seconds=_wait(config, attempts))
        values = {"last_seq": skipped} if skipped is not None else {}
        _move(db, name, attempts=attempts, next_attempt_at=due, last_error=error, **values)
        return due
    if skipped is not None:
        _move(db, name, last_seq=skipped)
    return None


def _keep_failed(db: Database, name: str, seq: int, attempts: int, error: str) -> None:
    _log.warning("webhook %s did not take event %s after %s tries: %s", name, seq, attempts, error)
    with db.write() as connection:
        connection.execute(
            insert(notification_failures).values(
                webhook=name, seq=seq, attempts=attempts, error=error[:2000], failed_at=utcnow()
            )
        )
        connection.execute(
            update(notification_cursors)
            .where(notification_cursors.c.webhook == name)
            .values(last_seq=seq, attempts=0, next_attempt_at=None, last_error=error[:2000])
        )


def _pending(settings: Settings, db: Database) -> bool:
    newest = audit.newest_seq(db)
    with db.read() as connection:
        rows = connection.execute(select(notification_cursors)).mappings().all()
    cursors = {row["webhook"]: row["last_seq"] for row in rows}
    return any(cursors.get(name, newest) < newest for name in settings.config.notifications.webhooks)


def deliver(settings: Settings, db: Database, *, linger: float = 0.0) -> Sent:
    """Deliver what is pending to every webhook, waiting out retries; then wait ``linger`` seconds for
    more before returning. ``busy`` when another process is delivering (it will send these too)."""
    sent = Sent({}, {})
    webhooks = list(settings.config.notifications.webhooks)
    if not webhooks:
        return sent
    while True:
        try:
            with (
                locks.hold(db, LOCK, owner="notifications", timeout=0),
                _client(settings.config.notifications) as client,
            ):
                _deliver_while_busy(settings, db, client, webhooks, sent, linger)
        except LockTimeout:
            return Sent(sent.delivered, sent.failed, busy=True)
        # Released: a write that committed while this process still held the lock did not start another
        # deliverer, so look once more.
        if not _pending(settings, db):
            return sent


def _deliver_while_busy(
    settings: Settings, db: Database, client: httpx.Client, webhooks: list[str], sent: Sent, linger: float
) -> None:
    quiet_since = time.monotonic()
    while True:
        before = sum(sent.delivered.values()) + sum(sent.failed.values())
        dues = [
            due for name in webhooks if (due := _deliver_one(settings, db, client, name, sent)) is not None
        ]
        if sum(sent.delivered.values()) + sum(sent.failed.values()) > before:
            quiet_since = time.monotonic()
        if dues:
            time.sleep(min(max((min(dues) - utcnow()).total_seconds(), 0.05), 1.0))
            continue
        if time.monotonic() - quiet_since >= linger:
            return
        time.sleep(min(0.2, linger))


def kick(settings: Settings, db: Database, seqs: list[int]) -> None:
    """Events ``seqs`` were committed: make sure a deliverer will send them (start one unless one runs)."""
    webhooks = list(settings.config.notifications.webhooks)
    if not webhooks:
        return
    _start_cursors(db, webhooks, min(seqs) - 1)
    _children[:] = [child for child in _children if child.poll() is None]  # reaped when they end
    # The lock is looked at after the events committed, and a deliverer looks for pending events after
    # it lets the lock go: one of the two sees these events.
    if locks.holder(db, LOCK) is not None:
        return
    folder = settings.root / ".loopline"
    folder.mkdir(exist_ok=True)
    with (folder / "notifications.log").open("ab") as log:
        _children.append(
            subprocess.Popen(
                [sys.executable, "-m", "loopline", "notifications", "deliver", "--linger", "2", "--quiet"],
                cwd=settings.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )


# ---- what failed --------------------------------------------------------------------------------------


def failures(db: Database, webhook: str | None = None) -> list[Failure]:
    """The events kept as failed, oldest first."""
    statement = select(notification_failures).order_by(notification_failures.c.id)
    if webhook:
        statement = statement.where(notification_failures.c.webhook == webhook)
    with db.read() as connection:
        rows = connection.execute(statement).mappings().all()
    records = audit.by_seq(db, [row["seq"] for row in rows])
    return [
        Failure(
            row["id"],
            row["webhook"],
            row["seq"],
            records[row["seq"]].kind,
            row["attempts"],
            row["error"],
            as_utc(row["failed_at"]),
            records[row["seq"]].event.workspace,
        )
        for row in rows
    ]


def retry_failures(settings: Settings, db: Database, webhook: str | None = None) -> list[Failure]:
    """Send each failed event once more, in order; the ones delivered are forgotten. Returns those that
    failed again."""
    config = settings.config.notifications
    if webhook is not None and webhook not in config.webhooks:
        raise NotFound(f"webhook '{webhook}' is not in notifications.webhooks of loopline.yaml")
    still: list[Failure] = []
    found = failures(db, webhook)
    records = audit.by_seq(db, [failure.seq for failure in found])
    with _client(config) as client:
        for failure in found:
            hook = config.webhooks.get(failure.webhook)
            error = (
                _attempt(client, failure.webhook, hook, records[failure.seq], settings.config.project)
                if hook is not None
                else f"webhook '{failure.webhook}' is no longer configured"
            )
            with db.write() as connection:
                row = notification_failures.c.id == failure.id
                if error is None:
                    connection.execute(delete(notification_failures).where(row))
                    continue
                connection.execute(
                    update(notification_failures)
                    .where(row)
                    .values(attempts=failure.attempts + 1, error=error[:2000])
                )
            still.append(replace(failure, attempts=failure.attempts + 1, error=error))
    return still


def log_path(root: Path) -> Path:
    """Where the deliverers started by writes keep their output."""
    return root / ".loopline" / "notifications.log"

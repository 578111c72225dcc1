"""The append-only, hash-chained audit log of every change of state."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loopline.events import EVENT_TYPES, Event
from loopline.state import Database, as_utc
from loopline.state.schema import audit_head, events

__all__ = ["AuditRecord", "Verification", "append", "query", "verify"]

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    """One stored event with its place in the chain."""

    seq: int
    event_id: str
    event: Event
    prev_hash: str
    hash: str
    kind: str = ""

    def __post_init__(self) -> None:
        # Rebuilt from JSON (a control-plane answer), the event arrives as the base class: restore it.
        if not self.kind:
            object.__setattr__(self, "kind", self.event.kind)
        elif self.event.kind != self.kind and self.kind in EVENT_TYPES:
            event = EVENT_TYPES[self.kind].model_validate(self.event.model_dump())
            object.__setattr__(self, "event", event)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        data = self.event.model_dump(mode="json")
        return {"seq": self.seq, "id": self.event_id, "kind": self.event.kind, **data, "hash": self.hash}


def _canonical(event_id: str, event: Event) -> dict[str, Any]:
    return {"event_id": event_id, "kind": event.kind, **event.model_dump(mode="json")}


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """The hash of one event given the hash before it."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append(connection: Connection, event: Event) -> int:
    """Append ``event`` inside the caller's write transaction; return its sequence number."""
    head = connection.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    event_id = str(uuid.uuid4())
    digest = chain_hash(head.hash, _canonical(event_id, event))
    values = event.model_dump()
    seq = connection.execute(
        insert(events).values(event_id=event_id, kind=event.kind, prev_hash=head.hash, hash=digest, **values)
    ).inserted_primary_key[0]  # type: ignore[index]
    connection.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    return int(seq)


def record(db: Database, event: Event) -> int:
    """Append ``event`` in a transaction of its own."""
    with db.write() as connection:
        return append(connection, event)


def query(
    db: Database,
    *,
    commit: str | None = None,
    workspace: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Events matching every given filter, oldest first (the newest ``limit`` when given)."""
    statement = select(events)
    if commit:
        statement = statement.where(events.c.git_commit.startswith(commit.lower()))
    for column, value in (("workspace", workspace), ("model", model), ("kind", kind), ("actor", actor)):
        if value:
            statement = statement.where(events.c[column] == value)
    statement = statement.order_by(events.c.seq.desc())
    if limit:
        statement = statement.limit(limit)
    with db.read() as connection:
        rows = connection.execute(statement).mappings().all()
    return [_record(row) for row in reversed(rows)]


def _record(row: Any) -> AuditRecord:
    cls = EVENT_TYPES.get(row["kind"], Event)
    fields = {name: row[name] for name in Event.model_fields if name in row}
    fields["at"] = as_utc(fields["at"]) if isinstance(fields["at"], datetime) else fields["at"]
    return AuditRecord(
        seq=row["seq"],
        event_id=row["event_id"],
        event=cls.model_validate(fields),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        kind=cls.kind,
    )


@dataclass(frozen=True)
class Verification:
    """What ``audit verify`` found."""

    events: int
    problems: list[dict[str, Any]]

    @property
    def intact(self) -> bool:
        """True when every event is as it was written, in order, with none missing."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"intact": self.intact, "events": self.events, "problems": self.problems}


def verify(db: Database) -> Verification:
    """Recompute the hash chain: name every edited, deleted or reordered event."""
    from sqlalchemy import select as _select

    problems: list[dict[str, Any]] = []
    expected_prev, expected_seq, count = GENESIS, None, 0
    with db.read() as connection:
        head = connection.execute(
            _select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        rows = connection.execute(_select(events).order_by(events.c.seq)).mappings().all()
    for row in rows:
        count += 1
        seq = row["seq"]
        if expected_seq is not None and seq != expected_seq:
            problems.append(
                {
                    "seq": expected_seq,
                    "problem": f"event #{expected_seq}"
                    + (f" to #{seq - 1} are" if seq - 1 > expected_seq else " is")
                    + " missing (deleted)",
                }
            )
        if row["prev_hash"] != expected_prev:
            problems.append(
                {
                    "seq": seq,
                    "problem": f"event #{seq} does not follow the event before it: an event "
                    "was deleted or the order was changed",
                }
            )
        record = _record(row)
        actual = chain_hash(row["prev_hash"], _canonical(record.event_id, record.event))
        if actual != row["hash"]:
            problems.append(
                {
                    "seq": seq,
                    "problem": f"event #{seq} ({row['kind']}) was edited after it was "
                    "written: its content no longer matches its hash",
                }
            )
        expected_prev, expected_seq = row["hash"], seq + 1
    last_seq = rows[-1]["seq"] if rows else 0
    last_hash = rows[-1]["hash"] if rows else GENESIS
    if (head.seq, head.hash) != (last_seq, last_hash):
        problems.append(
            {
                "seq": head.seq,
                "problem": f"the log ends at #{last_seq} but #{head.seq} was written: "
                "the newest events were deleted",
            }
        )
    return Verification(count, problems)

"""The append-only, hash-chained audit log of every change of state.

Each event's hash covers the event and the hash before it. With an audit key (``LOOPLINE_AUDIT_KEY``, or
a file named by ``LOOPLINE_AUDIT_KEY_FILE``) the hash is an HMAC with that key, which the database does
not hold: whoever can write the database can still delete or edit rows, but cannot make the chain hold
again. Deleting the newest events and moving the head is only seen against a checkpoint: the signed
(sequence, hash, time) of the head, written elsewhere by ``loopline audit checkpoint``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loopline.errors import ConfigError
from loopline.events import EVENT_TYPES, Event
from loopline.state import Database, as_utc
from loopline.state.schema import audit_head, events

__all__ = [
    "AuditRecord",
    "Checkpoint",
    "Verification",
    "append",
    "audit_key",
    "by_seq",
    "checkpoint",
    "following",
    "newest_checkpoint",
    "newest_seq",
    "query",
    "save_checkpoint",
    "signing_key",
    "verify",
]

GENESIS = "0" * 64
KEY_ENV = "LOOPLINE_AUDIT_KEY"
KEY_FILE_ENV = "LOOPLINE_AUDIT_KEY_FILE"
MIN_KEY = 32


def audit_key() -> bytes | None:
    """The audit key of this process, from ``LOOPLINE_AUDIT_KEY`` or the file ``LOOPLINE_AUDIT_KEY_FILE``
    names; None when neither is set."""
    text = os.environ.get(KEY_ENV, "")
    where = KEY_ENV
    if not text and os.environ.get(KEY_FILE_ENV):
        where = os.environ[KEY_FILE_ENV]
        try:
            text = Path(where).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV} names {where}, which cannot be read: {exc.strerror}") from None
    if not text:
        return None
    if len(text) < MIN_KEY:
        raise ConfigError(
            f"the audit key in {where} has {len(text)} characters; use at least {MIN_KEY} random ones "
            "(`openssl rand -hex 32`)"
        )
    return text.encode()


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


def chain_hash(prev_hash: str, payload: dict[str, Any], key: bytes | None = None) -> str:
    """The hash of one event given the hash before it: an HMAC-SHA256 with ``key``, else a SHA-256."""
    body = (prev_hash + json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)).encode()
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def append(connection: Connection, event: Event) -> int:
    """Append ``event`` inside the caller's write transaction; return its sequence number."""
    key = audit_key()
    head = connection.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    event_id = str(uuid.uuid4())
    digest = chain_hash(head.hash, _canonical(event_id, event), key)
    values = event.model_dump()
    seq = connection.execute(
        insert(events).values(
            event_id=event_id,
            kind=event.kind,
            prev_hash=head.hash,
            hash=digest,
            keyed=key is not None,
            **values,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    connection.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    connection.info.setdefault("appended", []).append(int(seq))
    return int(seq)


def record(db: Database, event: Event) -> int:
    """Append ``event`` in a transaction of its own."""
    with db.write() as connection:
        return append(connection, event)


_INTEGER, _BIGINT = 2**31 - 1, 2**63 - 1
"""The largest values PostgreSQL compares a sequence number (an INTEGER) and a LIMIT (a BIGINT) with."""


def query(
    db: Database,
    *,
    commit: str | None = None,
    workspace: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
    before: int | None = None,
) -> list[AuditRecord]:
    """Events matching every given filter, oldest first (the newest ``limit`` when given; only those before
    sequence number ``before`` when given, to page back through the log)."""
    statement = select(events)
    if before is not None:  # beyond what the column holds, PostgreSQL refuses to compare
        statement = statement.where(events.c.seq < min(before, _INTEGER))
    if commit:
        statement = statement.where(events.c.git_commit.startswith(commit.lower()))
    for column, value in (("workspace", workspace), ("model", model), ("kind", kind), ("actor", actor)):
        if value:
            statement = statement.where(events.c[column] == value)
    statement = statement.order_by(events.c.seq.desc())
    if limit:
        statement = statement.limit(min(limit, _BIGINT))
    with db.read() as connection:
        rows = connection.execute(statement).mappings().all()
    return [_record(row) for row in reversed(rows)]


def following(db: Database, after: int, limit: int = 100) -> list[AuditRecord]:
    """The events after sequence number ``after``, oldest first, at most ``limit``."""
    statement = select(events).where(events.c.seq > after).order_by(events.c.seq).limit(limit)
    with db.read() as connection:
        return [_record(row) for row in connection.execute(statement).mappings().all()]


def by_seq(db: Database, seqs: list[int]) -> dict[int, AuditRecord]:
    """The events with these sequence numbers."""
    with db.read() as connection:
        rows = connection.execute(select(events).where(events.c.seq.in_(seqs))).mappings().all()
    return {row["seq"]: _record(row) for row in rows}


def newest_seq(db: Database) -> int:
    """The sequence number of the newest event (0 before the first)."""
    with db.read() as connection:
        return int(connection.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())


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
class Checkpoint:
    """The head of the chain at one moment, signed with the audit key."""

    seq: int
    hash: str
    at: str
    keyed_from: int | None
    signature: str = ""

    def _body(self) -> bytes:
        return json.dumps(
            {"seq": self.seq, "hash": self.hash, "at": self.at, "keyed_from": self.keyed_from},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def signed(self, key: bytes) -> Checkpoint:
        """This checkpoint with its signature."""
        signature = hmac.new(key, self._body(), hashlib.sha256).hexdigest()
        return Checkpoint(self.seq, self.hash, self.at, self.keyed_from, signature)

    def holds(self, key: bytes) -> bool:
        """True when the signature was made with ``key``."""
        return hmac.compare_digest(self.signed(key).signature, self.signature)

    @property
    def file_name(self) -> str:
        """Its name in the checkpoint folder: ordered by sequence."""
        return f"checkpoint-{self.seq:012d}.json"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (what the checkpoint file holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """A checkpoint read back from its JSON; ConfigError when it is not one."""
        try:
            keyed = data.get("keyed_from")
            return cls(
                int(data["seq"]),
                str(data["hash"]),
                str(data["at"]),
                None if keyed is None else int(keyed),
                str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigError(
                "that is not an audit checkpoint: it needs seq, hash, at and signature"
            ) from None


def signing_key() -> bytes:
    """The audit key; ConfigError naming the variables when there is none."""
    key = audit_key()
    if key is None:
        raise ConfigError(
            f"a checkpoint is signed with the audit key: set {KEY_ENV} (or {KEY_FILE_ENV}) on this host"
        )
    return key


def checkpoint(db: Database) -> Checkpoint:
    """The signed head of the chain; ConfigError without an audit key."""
    from loopline.domain import utcnow

    key = signing_key()
    with db.read() as connection:
        head = connection.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        first = connection.execute(select(events.c.seq).where(events.c.keyed).order_by(events.c.seq)).first()
    at = utcnow().isoformat(timespec="seconds")
    return Checkpoint(head.seq, head.hash, at, first.seq if first else None).signed(key)


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


def _problem(seq: int | None, text: str) -> dict[str, Any]:
    return {"seq": seq, "problem": text}


@dataclass
class _Walk:
    """The chain as far as it was walked: what each next event must follow."""

    key: bytes | None
    prev: str = GENESIS
    seq: int | None = None
    keyed_since: int | None = None
    unverifiable: int = 0

    def step(self, row: Any) -> list[dict[str, Any]]:
        """The problems of one event, in order."""
        seq, found = row["seq"], []
        if self.seq is not None and seq != self.seq:
            span = f" to #{seq - 1} are" if seq - 1 > self.seq else " is"
            found.append(_problem(self.seq, f"event #{self.seq}{span} missing (deleted)"))
        if row["prev_hash"] != self.prev:
            found.append(
                _problem(
                    seq,
                    f"event #{seq} does not follow the event before it: an event was deleted or the order "
                    "was changed",
                )
            )
        if row["keyed"]:
            self.keyed_since = seq if self.keyed_since is None else self.keyed_since
        elif self.keyed_since is not None:
            found.append(
                _problem(
                    seq,
                    f"event #{seq} has a plain hash after keyed events from #{self.keyed_since}: it was "
                    f"rewritten, or written by a process without {KEY_ENV}",
                )
            )
        if row["keyed"] and self.key is None:
            self.unverifiable += 1
        else:
            record = _record(row)
            key = self.key if row["keyed"] else None
            if chain_hash(row["prev_hash"], _canonical(record.event_id, record.event), key) != row["hash"]:
                found.append(
                    _problem(
                        seq,
                        f"event #{seq} ({row['kind']}) was edited after it was written: its content no "
                        "longer matches its hash",
                    )
                )
        self.prev, self.seq = row["hash"], seq + 1
        return found


def verify(db: Database, checkpoints: list[Checkpoint] | None = None) -> Verification:
    """Recompute the hash chain (HMACs with the audit key where events are keyed) and compare it with
    ``checkpoints``: name every edited, deleted or reordered event, and a log cut short."""
    walk = _Walk(audit_key())
    with db.read() as connection:
        head = connection.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        rows = connection.execute(select(events).order_by(events.c.seq)).mappings().all()
    problems = [problem for row in rows for problem in walk.step(row)]
    if walk.unverifiable:
        problems.append(
            _problem(
                walk.keyed_since,
                f"{walk.unverifiable} event(s) are keyed and cannot be checked without the audit key; set "
                f"{KEY_ENV} (or {KEY_FILE_ENV})",
            )
        )
    last_seq, last_hash = (rows[-1]["seq"], rows[-1]["hash"]) if rows else (0, GENESIS)
    if (head.seq, head.hash) != (last_seq, last_hash):
        problems.append(
            _problem(
                head.seq,
                f"the log ends at #{last_seq} but #{head.seq} was written: the newest events were deleted",
            )
        )
    by_seq = {row["seq"]: row for row in rows}
    for mark in checkpoints or []:
        problems.extend(_against(mark, by_seq, walk.key))
    return Verification(len(rows), problems)


def _against(mark: Checkpoint, rows: dict[int, Any], key: bytes | None) -> list[dict[str, Any]]:
    """What a checkpoint says is wrong with the chain now."""
    if key is None:
        return [
            {"seq": mark.seq, "problem": f"the checkpoint of {mark.at} is signed; set {KEY_ENV} to check it"}
        ]
    if not mark.holds(key):
        return [
            {
                "seq": mark.seq,
                "problem": f"the checkpoint of {mark.at} is not signed with this audit key: it was forged, "
                "or the key changed",
            }
        ]
    row = rows.get(mark.seq)
    if row is None:
        return [
            {
                "seq": mark.seq,
                "problem": f"event #{mark.seq}, the head at the checkpoint of {mark.at}, is gone: the log "
                "was cut short or rewritten",
            }
        ]
    found = []
    if row["hash"] != mark.hash:
        found.append(
            {
                "seq": mark.seq,
                "problem": f"event #{mark.seq} is not the one the checkpoint of {mark.at} signed: the log "
                "was rewritten",
            }
        )
    if mark.keyed_from is not None:
        plain = [seq for seq, r in rows.items() if seq >= mark.keyed_from and not r["keyed"]]
        if plain:
            found.append(
                {
                    "seq": plain[0],
                    "problem": f"event #{plain[0]} has a plain hash, but the checkpoint of {mark.at} says "
                    f"events are keyed from #{mark.keyed_from}: it was rewritten",
                }
            )
    return found


def _folder(location: str) -> tuple[Any, str]:
    from loopline.storage.fs import filesystem

    return filesystem(location, "the audit checkpoint folder"), location.rstrip("/")


def save_checkpoint(mark: Checkpoint, location: str) -> str:
    """Write ``mark`` into the checkpoint folder ``location`` (a path or fsspec URL); where it went."""
    fs, folder = _folder(location)
    fs.makedirs(folder, exist_ok=True)
    target = f"{folder}/{mark.file_name}"
    fs.pipe(target, json.dumps(mark.to_dict(), indent=2).encode())
    return target


def newest_checkpoint(location: str) -> Checkpoint | None:
    """The checkpoint with the highest sequence number in ``location``, if any."""
    fs, folder = _folder(location)
    if not fs.exists(folder):
        return None
    names = sorted(p for p in fs.ls(folder, detail=False) if p.rsplit("/", 1)[-1].startswith("checkpoint-"))
    if not names:
        return None
    return Checkpoint.from_dict(json.loads(fs.cat(names[-1])))

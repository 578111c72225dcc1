"""Named locks held in loopline's database, so they serialise work across processes and machines.

A holder renews its lease by heartbeat (every third of the lease) for as long as it holds the lock, so a
lease can be short: a holder that died on another host frees the lock within one lease (a minute), one
that died on this host at once. An admin can break a lock (``loopline unlock NAME``, audited).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from loopline.domain import utcnow
from loopline.errors import LockTimeout
from loopline.state import Database, as_utc
from loopline.state.schema import locks

__all__ = [
    "Heartbeat",
    "LockInfo",
    "break_lock",
    "hold",
    "holder",
    "list_locks",
    "live_locks",
    "process_alive",
]

_HOST = socket.gethostname()
LEASE_SECONDS = 60.0


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds in a background thread for the length of a ``with``
    block: how a lock's lease, or a batch job, shows its process is alive."""

    def __init__(self, interval: float, beat: Callable[[], None]) -> None:
        self.interval = interval
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopline-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a missed beat is retried; the lease is three beats long
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class LockInfo:
    """A lock and who holds it."""

    name: str
    owner: str
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_acquire(db: Database, name: str, owner: str, lease: float) -> dict[str, object] | None:
    """Take the lock, or return the row of whoever holds it."""
    now = utcnow()
    mine = {
        "owner": owner,
        "host": _HOST,
        "pid": os.getpid(),
        "acquired_at": now,
        "expires_at": now + timedelta(seconds=lease),
    }
    with db.write() as connection:
        row = connection.execute(select(locks).where(locks.c.name == name)).mappings().first()
        if row is None:
            connection.execute(insert(locks).values(name=name, **mine))
            return None
        if _stale(_info(row)):
            connection.execute(update(locks).where(locks.c.name == name).values(**mine))
            return None
        return dict(row)


@contextmanager
def hold(
    db: Database,
    name: str,
    owner: str,
    *,
    timeout: float = 600,
    lease: float = LEASE_SECONDS,
    waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold lock ``name`` for the block, renewing its lease by heartbeat; wait up to ``timeout`` seconds
    for another holder to finish, calling ``waiting`` (when given) each time it finds the lock held.

    A holder that died on this host, or whose lease ran out (it stopped beating), no longer holds it.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        holder = _try_acquire(db, name, owner, lease)
        if holder is None:
            break
        if waiting is not None:
            waiting()
        if time.monotonic() >= deadline:
            raise LockTimeout(
                name=name,
                owner=f"{holder['owner']} (pid {holder['pid']} on {holder['host']})",
                since=as_utc(holder["acquired_at"]).isoformat(timespec="seconds"),  # type: ignore[arg-type]
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    mine = (locks.c.name == name) & (locks.c.host == _HOST) & (locks.c.pid == os.getpid())

    def renew() -> None:
        with db.write() as connection:
            connection.execute(
                update(locks).where(mine).values(expires_at=utcnow() + timedelta(seconds=lease))
            )

    try:
        with Heartbeat(lease / 3, renew):
            yield
    finally:
        with db.write() as connection:
            connection.execute(delete(locks).where(mine))


def _stale(lock: LockInfo) -> bool:
    """True when the lock's holder stopped beating, or died on this host: it holds it no longer."""
    return lock.expires_at < utcnow() or (lock.host == _HOST and not process_alive(lock.pid))


def holder(db: Database, name: str) -> LockInfo | None:
    """Who holds lock ``name`` now (None when nobody, or when its holder died or stopped beating)."""
    return next((lock for lock in live_locks(db) if lock.name == name), None)


def live_locks(db: Database) -> list[LockInfo]:
    """The locks whose holders live: those a new holder would wait for."""
    return [lock for lock in list_locks(db) if not _stale(lock)]


def list_locks(db: Database) -> list[LockInfo]:
    """Every lock held now."""
    with db.read() as connection:
        rows = connection.execute(select(locks).order_by(locks.c.name)).mappings().all()
    return [_info(row) for row in rows]


def _info(row: Any) -> LockInfo:
    """A row of the locks table as what it says."""
    return LockInfo(
        row["name"],
        row["owner"],
        row["host"],
        int(row["pid"]),
        as_utc(row["acquired_at"]),
        as_utc(row["expires_at"]),
    )


def break_lock(connection: Any, name: str) -> LockInfo | None:
    """Remove lock ``name`` inside the caller's transaction; who held it, or None when nobody did."""
    row = connection.execute(select(locks).where(locks.c.name == name)).mappings().first()
    if row is None:
        return None
    connection.execute(delete(locks).where(locks.c.name == name))
    return _info(row)

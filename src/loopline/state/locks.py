"""Named locks held in loopline's database, so they serialise work across processes and machines."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from loopline.domain import utcnow
from loopline.errors import LockTimeout
from loopline.state import Database, as_utc
from loopline.state.schema import locks

__all__ = ["hold", "process_alive"]

_HOST = socket.gethostname()


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
        stale = as_utc(row["expires_at"]) < now or (
            row["host"] == _HOST and not process_alive(int(row["pid"]))
        )
        if stale:
            connection.execute(update(locks).where(locks.c.name == name).values(**mine))
            return None
        return dict(row)


@contextmanager
def hold(db: Database, name: str, owner: str, *, timeout: float = 600, lease: float = 3600) -> Iterator[None]:
    """Hold lock ``name`` for the block; wait up to ``timeout`` seconds for another holder to finish.

    A holder that died on this host, or whose lease ran out, no longer holds the lock.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        holder = _try_acquire(db, name, owner, lease)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                name=name,
                owner=f"{holder['owner']} (pid {holder['pid']} on {holder['host']})",
                since=as_utc(holder["acquired_at"]).isoformat(timespec="seconds"),  # type: ignore[arg-type]
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    try:
        yield
    finally:
        with db.write() as connection:
            connection.execute(
                delete(locks).where(locks.c.name == name, locks.c.host == _HOST, locks.c.pid == os.getpid())
            )

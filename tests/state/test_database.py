"""loopline's database: migrations, revisions, locks and the audit chain."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from loopline import audit
from loopline.domain import utcnow
from loopline.errors import LockTimeout, NotProvisioned, Refused, StoreUnavailable
from loopline.events import Registered, Shared
from loopline.state import HEAD_REVISION, Database
from loopline.state.locks import hold, list_locks
from loopline.state.schema import locks


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


def test_upgrade_creates_the_tables_once(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/deep/state.db")
    assert database.revision() is None
    assert database.upgrade() is True
    assert database.revision() == HEAD_REVISION
    assert database.upgrade() is False


def test_head_revision_matches_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__import__("loopline.state").state.__file__).parent / "migrations")
    )
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_a_database_that_was_never_created_asks_for_up(tmp_path: Path) -> None:
    with pytest.raises(NotProvisioned, match="run `loopline up`"):
        Database(f"sqlite:///{tmp_path}/none.db").require_current(tmp_path)
    # Whatever reads or writes before `up` leaves no empty database behind, which later commands would
    # take for a damaged one ("no such table"): it is told to run `up` too.
    never = Database(f"sqlite:///{tmp_path}/never.db", project=tmp_path)
    for use in (never.read, never.write):
        with pytest.raises(NotProvisioned, match=f"run `loopline up` in {tmp_path} first"), use():
            pass
    assert not list(tmp_path.glob("never.db*"))
    assert never.upgrade() is True and never.revision() == HEAD_REVISION  # `up` creates it


def test_a_database_a_newer_loopline_migrated_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """Someone upgraded loopline, migrated, and went back (another machine, an older CI image): `up`
    must not try to migrate it (Alembic cannot find the revision), nor any command read it."""
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    with database.write() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    told = "loopline's database is at migration 0099, which loopline "
    upgrade = "a newer loopline migrated it; upgrade loopline here (pip install -U loopline)"
    for attempt in (database.upgrade, lambda: database.require_current(tmp_path)):
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.message.startswith(told) and upgrade in refused.value.message
        assert f"(its newest is {HEAD_REVISION})" in refused.value.message
    assert database.revision() == "0099"


def test_a_damaged_database_file_is_named_in_one_line_and_a_constraint_error_still_reaches_its_caller(
    tmp_path: Path, db: Database
) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.write() as connection:  # the caller's to handle, as before
        for _ in range(2):
            connection.execute(
                insert(locks).values(
                    name="x", owner="o", host="h", pid=1, acquired_at=utcnow(), expires_at=utcnow()
                )
            )
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database, a text file saved over it" * 100)
    with pytest.raises(StoreUnavailable) as unavailable:
        Database(f"sqlite:///{damaged}").revision()
    assert unavailable.value.message == (
        f"loopline's database at sqlite:///{damaged} is unavailable: file is not a database; restore it "
        "from a backup"
    )


def test_audit_events_chain_by_hash_in_order(db: Database) -> None:
    first = audit.record(
        db, Registered(actor="a", workspace="dev", model="m", version=1, git_commit="c" * 40)
    )
    second = audit.record(
        db, Shared(actor="b", workspace="shared", model="m", version=1, git_commit="c" * 40)
    )
    records = audit.query(db)
    assert [r.seq for r in records] == [first, second]
    assert records[0].prev_hash == audit.GENESIS
    assert records[1].prev_hash == records[0].hash
    assert isinstance(records[1].event, Shared) and records[1].event.actor == "b"
    payload = {
        "event_id": records[0].event_id,
        "kind": "registered",
        **records[0].event.model_dump(mode="json"),
    }
    assert audit.chain_hash(audit.GENESIS, payload) == records[0].hash


def test_audit_query_filters_by_commit_prefix_and_kind(db: Database) -> None:
    audit.record(db, Registered(actor="a", git_commit="a" * 40))
    audit.record(db, Registered(actor="a", git_commit="b" * 40))
    audit.record(db, Shared(actor="a", git_commit="b" * 40))
    assert len(audit.query(db, commit="bbbbbbb")) == 2
    assert [r.event.kind for r in audit.query(db, commit="bbbbbbb", kind="shared")] == ["shared"]
    assert [r.event.git_commit for r in audit.query(db, limit=1)] == ["b" * 40]


def test_concurrent_appends_keep_one_linear_chain(db: Database) -> None:
    def writer(n: int) -> None:
        for i in range(10):
            audit.record(db, Registered(actor=f"w{n}", version=i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = audit.query(db)
    assert len(records) == 40
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    with db.read() as connection:
        head = connection.execute(text("SELECT seq, hash FROM audit_head")).one()
    assert (head.seq, head.hash) == (records[-1].seq, records[-1].hash)


def test_a_lock_makes_the_second_holder_wait(db: Database) -> None:
    order: list[str] = []

    def second() -> None:
        with hold(db, "job", "second", timeout=10):
            order.append("second")

    with hold(db, "job", "first"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join()
    assert order == ["first", "second"]


def test_a_lock_held_too_long_times_out_naming_the_holder(db: Database) -> None:
    failure: list[BaseException] = []

    def second() -> None:
        try:
            with hold(db, "job", "second", timeout=0.2):
                pass
        except LockTimeout as exc:
            failure.append(exc)

    with hold(db, "job", "first-owner"):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert failure and "first-owner" in str(failure[0])
    assert "an admin can run `loopline unlock job`" in str(failure[0])


def test_a_lock_of_a_dead_process_is_taken_over(db: Database) -> None:
    with db.write() as connection:
        connection.execute(
            text(
                "INSERT INTO locks (name, owner, host, pid, acquired_at, expires_at) "
                "VALUES ('job', 'ghost', :host, 999999, '2026-01-01', '2999-01-01')"
            ),
            {"host": __import__("socket").gethostname()},
        )
    with hold(db, "job", "me", timeout=1):
        pass


def ghost(db: Database, host: str, expires_in: float) -> None:
    """A lock held by a process of ``host`` whose lease ends in ``expires_in`` seconds."""
    now = utcnow()
    with db.write() as connection:
        connection.execute(
            insert(locks).values(
                name="job",
                owner="ghost",
                host=host,
                pid=999999,
                acquired_at=now,
                expires_at=now + timedelta(seconds=expires_in),
            )
        )


def test_a_holder_on_another_host_that_stopped_beating_frees_the_lock_within_its_lease(db: Database) -> None:
    ghost(db, "elsewhere", expires_in=0.5)
    started = time.monotonic()
    with hold(db, "job", "me", timeout=10):
        assert [lock.owner for lock in list_locks(db)] == ["me"]
    assert 0.4 < time.monotonic() - started < 5
    assert list_locks(db) == []


def test_a_live_holder_keeps_its_short_lease_by_heartbeat(db: Database) -> None:
    with hold(db, "job", "first", lease=1.2):
        granted = list_locks(db)[0].expires_at
        time.sleep(2.5)  # twice the first lease
        renewed = list_locks(db)[0]
        assert renewed.owner == "first" and renewed.expires_at > granted
        with pytest.raises(LockTimeout), hold(db, "job", "second", timeout=0.3):
            pass

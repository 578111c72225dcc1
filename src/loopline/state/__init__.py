"""loopline's own database: SQLite by default, PostgreSQL unchanged; Alembic migrates it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from loopline.errors import NotProvisioned, Refused, StoreUnavailable, UsageError

__all__ = [
    "CONNECT_TIMEOUT",
    "HEAD_REVISION",
    "Database",
    "as_utc",
    "ensure_database",
    "is_database_url",
    "new_engine",
    "reset_sequences",
    "with_connect_timeout",
]

HEAD_REVISION = "0016"
"""The newest migration; a test keeps it equal to Alembic's head."""

_log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
CONNECT_TIMEOUT = 10
"""Seconds a PostgreSQL connection may take to open, unless its URL sets ``connect_timeout``: a server
that is down or behind a firewall is said to be unavailable then, not waited for (libpq waits forever)."""


def is_database_url(url: str) -> bool:
    """True when ``url`` reads as a database URL of a dialect SQLAlchemy has (``sqlite:///...``,
    ``postgresql+psycopg://...``; its driver may still be missing, which :func:`new_engine` names)."""
    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError):
        return False
    except ImportError:  # a known dialect whose driver is not installed
        return True
    return "://" in url


def as_utc(value: datetime) -> datetime:
    """``value`` with its timezone set to UTC (SQLite returns naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    """Connections to loopline's database, with serialised write transactions on every backend."""

    def __init__(
        self, url: str, after_events: Callable[[list[int]], None] | None = None, project: Path | None = None
    ) -> None:
        self.url = url
        self.project = project
        """The project whose database this is, for the error saying to run ``loopline up`` there."""
        self.after_events = after_events
        """Called after a write transaction that appended audit events commits, with their sequence
        numbers (how webhooks hear of them); what it raises is logged, never passed to the writer."""

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite default."""
        return self.url.startswith("sqlite")

    @property
    def redacted_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The engine, shared by every Database of this URL in the process (one pool per database)."""
        with _ENGINES_LOCK:
            engine = _ENGINES.get(self.url)
            if engine is None:
                engine = _ENGINES[self.url] = self._create_engine()
            return engine

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return new_engine(self.url, pool_pre_ping=True)
        import sqlite3

        path = self._sqlite_path().resolve()

        def opened() -> sqlite3.Connection:
            # mode=rw: a command run before `loopline up` (or after the file was lost) fails without leaving
            # an empty database behind that later commands would take for a damaged one; `up` creates it.
            return sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=60, check_same_thread=False)

        engine = create_engine(self.url, creator=opened)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Manage transactions ourselves so writes can take the lock up front (BEGIN IMMEDIATE):
            # SQLite's default deferred upgrade from reader to writer fails at once under contention.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            mode = "IMMEDIATE" if connection.info.get("write") else "DEFERRED"
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._errors(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the database's write lock from its start (SQLite)."""
        with self._errors(), self.engine.connect() as connection:
            connection.info["write"] = True
            connection.info["appended"] = []
            try:
                with connection.begin():
                    yield connection
                appended = connection.info["appended"]
            finally:
                connection.info["write"] = False
                connection.info["appended"] = []
        if appended and self.after_events is not None:
            try:
                self.after_events(appended)
            except Exception:  # the change is committed; telling others of it must not undo or fail it
                _log.warning("could not hand events %s to notifications", appended, exc_info=True)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            if self.is_sqlite and not self._sqlite_path().exists():
                raise NotProvisioned(
                    what=f"loopline's database ({self.redacted_url})", project=self.project or "the project"
                ) from None
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise StoreUnavailable(
                what="loopline's database", where=self.redacted_url, reason=reason
            ) from None
        except DatabaseError as exc:
            if type(exc) is not DatabaseError:  # a constraint's IntegrityError, ...: for the caller
                raise
            # SQLite's "file is not a database", "database disk image is malformed": a damaged file.
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise StoreUnavailable(
                what="loopline's database",
                where=self.redacted_url,
                reason=f"{reason}; restore it from a backup",
            ) from None

    def revision(self) -> str | None:
        """The migration the database is at, or None when it has no loopline tables (or does not exist)."""
        if self.is_sqlite and not self._sqlite_path().exists():
            return None
        try:
            return self._revision()
        except StoreUnavailable as exc:
            if "does not exist" in exc.message:
                return None
            raise

    def _revision(self) -> str | None:
        with self.read() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            return str(row[0]) if row else None

    def require_current(self, project: Path) -> None:
        """Refuse to go on unless ``loopline up`` has created and migrated the database."""
        revision = self.revision()
        if revision is None:
            raise NotProvisioned(what=f"loopline's database ({self.redacted_url})", project=project)
        _refuse_newer(revision)
        if revision != HEAD_REVISION:
            raise NotProvisioned(
                f"loopline's database is at migration {revision} but this loopline needs {HEAD_REVISION}; "
                f"run `loopline up` in {project} to migrate it"
            )

    def upgrade(self, to: str = HEAD_REVISION) -> bool:
        """Create or migrate the tables to revision ``to`` (default: the newest); True when it changed any."""
        self.ensure_exists()
        before = self.revision()
        if before == to:
            return False
        if before is not None:
            _refuse_newer(before)
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._errors(), self.engine.connect() as connection:
            connection.info["write"] = True
            config.attributes["connection"] = connection
            command.upgrade(config, to)
            if connection.in_transaction():
                connection.commit()
        return True

    def _sqlite_path(self) -> Path:
        database = make_url(self.url).database or ""
        return Path(database)

    def dispose(self) -> None:
        """Close every pooled connection of this URL."""
        with _ENGINES_LOCK:
            engine = _ENGINES.pop(self.url, None)
        if engine is not None:
            engine.dispose()

    def ensure_exists(self) -> bool:
        """Create the database itself (a PostgreSQL database, a SQLite file's folder) if missing."""
        if self.is_sqlite:
            import sqlite3

            path = self._sqlite_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # the only place a SQLite database is created (see _create_engine)
                sqlite3.connect(path).close()
            return False
        return ensure_database(self.url)


def _refuse_newer(revision: str) -> None:
    """Refuse a database at a migration this loopline does not have: a newer loopline migrated it, and
    this one would misread it (or Alembic fail on it)."""
    known = {path.name.partition("_")[0] for path in (_MIGRATIONS / "versions").glob("*.py")}
    if revision in known:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = f"loopline {version('loopline')}"
    except PackageNotFoundError:
        mine = "this loopline"
    raise Refused(
        f"loopline's database is at migration {revision}, which {mine} does not have (its newest is "
        f"{HEAD_REVISION}): a newer loopline migrated it; upgrade loopline here (pip install -U loopline) "
        "and run the command again"
    )


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names when it does not exist; True when it was created."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return False
    admin = new_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if found:
                return False
            quoted = parsed.database.replace('"', '""')
            connection.execute(text(f'CREATE DATABASE "{quoted}"'))
            return True
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "cannot connect"
        raise StoreUnavailable(
            what="PostgreSQL",
            where=parsed.render_as_string(hide_password=True),
            reason=f"{reason}; create the database {parsed.database} by hand or grant CREATEDB",
        ) from None
    finally:
        admin.dispose()


def with_connect_timeout(url: str | URL) -> URL:
    """``url``, and for PostgreSQL a ``connect_timeout`` of ``CONNECT_TIMEOUT`` seconds unless it sets one."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql") and "connect_timeout" not in parsed.query:
        return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT)})
    return parsed


def new_engine(url: str | URL, **options: Any) -> Engine:
    """An SQLAlchemy engine (a PostgreSQL connection given ``CONNECT_TIMEOUT`` seconds to open, or its
    URL's own ``connect_timeout``); a missing database driver is a usage error that says what to install."""
    try:
        return create_engine(with_connect_timeout(url), **options)
    except ModuleNotFoundError as exc:
        parsed = make_url(url)
        raise UsageError(
            f"the database driver '{exc.name}' for {parsed.drivername} URLs is not installed: "
            "pip install 'loopline[postgres]' (psycopg 3) and write postgresql+psycopg://, or install "
            f"'{exc.name}'"
        ) from None


def reset_sequences(writer: Connection, tables: list[Table]) -> None:
    """PostgreSQL, after rows were copied in with their keys: continue each serial key after the highest
    copied value (a table without a serial key is passed over)."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        column, name = keys[0].name, table.name
        highest = f'COALESCE((SELECT MAX("{column}") FROM "{name}"), 0) + 1'
        serial = f"pg_get_serial_sequence('\"{name}\"', '{column}')"
        writer.execute(
            text(
                f"SELECT setval(seq, {highest}, false) "
                f"FROM (SELECT {serial} AS seq) AS s WHERE seq IS NOT NULL"
            )
        )

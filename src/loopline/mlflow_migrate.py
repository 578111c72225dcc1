"""Moving a workspace's MLflow database to another URL (a laptop's SQLite to the team's PostgreSQL, say)
with everything in it: experiments, runs, metrics, logged models, registered models with their version
numbers, tags and aliases. Row for row, keys intact, so loopline's catalog and every ``models:/`` URI mean
what they meant before."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from loopline.config import redact
from loopline.errors import Refused, StoreUnavailable, UsageError
from loopline.mlflow_output import quiet_mlflow
from loopline.state import Database, ensure_database, is_database_url, new_engine, reset_sequences

__all__ = ["ArtifactMove", "TrackingCopy", "artifact_now", "copy_tracking"]

_BATCH = 2000
_VERSION_TABLE = "alembic_version"
_FRESH = {"experiments": "experiment_id <> 0", "workspaces": "name <> 'default'"}
"""The rows a freshly created MLflow database holds (the Default experiment, the default workspace):
anything else there is someone's data."""


@dataclass(frozen=True)
class TrackingCopy:
    """What was copied where."""

    workspace: str
    source: str
    target: str
    rows: dict[str, int]
    artifacts: str | None = None
    """Where the runs' artifacts went (None: they stayed where they were)."""
    files: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ArtifactMove:
    """Runs' artifacts from one root to another: the files copied, and every recorded URI under the old
    root (an experiment's, a run's, a logged model's, a tag's) rewritten to name the same file under the
    new one."""

    old: str
    new: str

    def rewrite(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with its values under the old root moved to the new one."""
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = self.moved(value)
        return row

    def moved(self, uri: str) -> str:
        """``uri`` under the new root where it was under the old one; as it is otherwise."""
        if uri == self.old or uri.startswith(self.old + "/"):
            return self.new + uri[len(self.old) :]
        return uri

    def copy_files(self) -> int:
        """Copy every file under the old root to the new one with MLflow's artifact stores; the count."""
        quiet_mlflow()
        from mlflow.exceptions import MlflowException
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.utils.file_utils import local_file_uri_to_path

        try:
            target = get_artifact_repository(self.new)
        except MlflowException as exc:
            raise UsageError(
                f"--artifacts {self.new}: MLflow cannot store artifacts there ({str(exc).splitlines()[0]}); "
                "give a folder or a URL such as wasbs://container@account.blob.core.windows.net/dev or s3://"
            ) from None
        with tempfile.TemporaryDirectory(prefix="loopline-artifacts-") as scratch:
            if self.old.startswith("file:"):
                folder = Path(local_file_uri_to_path(self.old))  # type: ignore[no-untyped-call]
            else:
                folder = Path(get_artifact_repository(self.old).download_artifacts("", scratch))  # type: ignore[no-untyped-call]
            if not folder.is_dir():
                return 0
            with _reachable_artifacts(self.new):
                target.log_artifacts(str(folder))  # type: ignore[no-untyped-call]
            return sum(1 for path in folder.rglob("*") if path.is_file())


@contextmanager
def _reachable_artifacts(url: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # each artifact store raises its own kinds (azure, botocore, OSError)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StoreUnavailable(what="the artifact store", where=url, reason=reason) from None


def _is_database(url: str) -> bool:
    if not is_database_url(url):
        return False
    return not make_url(url).drivername.startswith(("http", "file", "databricks"))


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """One consistent read of the store: a SQLite file copied by SQLite's backup (while writers wait),
    another database in one repeatable-read transaction."""
    parsed = make_url(url)
    with tempfile.TemporaryDirectory(prefix="loopline-move-") as scratch:
        if parsed.drivername.startswith("sqlite"):
            path = Path(parsed.database or "")
            if not path.is_file():
                raise Refused(f"the MLflow store {url} does not exist; run `loopline up` first")
            copy = Path(scratch) / "snapshot.db"
            live, kept = (
                sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True),
                sqlite3.connect(copy),
            )
            try:
                live.backup(kept)
            finally:
                live.close()
                kept.close()
            engine = new_engine(f"sqlite:///{copy}", poolclass=NullPool)
        else:
            engine = new_engine(url, poolclass=NullPool, isolation_level="REPEATABLE READ")
        try:
            with _connected(engine, url) as connection:
                yield connection
        finally:
            engine.dispose()


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreUnavailable(what="the MLflow database", where=redact(url), reason=_reason(exc)) from None


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]


@contextmanager
def _connected(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection in a transaction, committed when the block ends well; only connecting is the
    database's fault to report."""
    with _reachable(url):
        connection = engine.connect()
    try:
        with connection.begin():
            yield connection
    finally:
        connection.close()


def _create(url: str) -> Engine:
    """The target database at this MLflow's newest schema, created when missing (MLflow migrates it)."""
    quiet_mlflow()
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if url.startswith("postgresql"):
        ensure_database(url)
    with tempfile.TemporaryDirectory() as scratch, _reachable(url):
        store = SqlAlchemyStore(url, str(Path(scratch) / "artifacts"))  # type: ignore[no-untyped-call]
        store.engine.dispose()
    return new_engine(url, poolclass=NullPool)


def _revision(connection: Connection) -> str | None:
    try:
        return connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalar()
    except SQLAlchemyError:
        return None


def _require_same_schema(source: Connection, target: Connection, url: str) -> None:
    have, want = _revision(source), _revision(target)
    if have is None:
        raise Refused(f"{redact(url)} is not an MLflow database (it has no {_VERSION_TABLE} table)")
    if have != want:
        raise Refused(
            f"the MLflow store {redact(url)} is at schema {have}, and this MLflow writes {want}: bring it "
            f"to the same MLflow first (`mlflow db upgrade {redact(url)}` with the MLflow installed here)"
        )


def _require_empty(target: Connection, tables: list[Table], url: str) -> None:
    for table in tables:
        count = select(func.count()).select_from(table)
        if table.name in _FRESH:
            count = count.where(text(_FRESH[table.name]))
        if target.execute(count).scalar():
            raise Refused(
                f"{redact(url)} already holds MLflow data (table {table.name}); move the store into an "
                "empty database"
            )


def _copy_table(
    source: Connection, target: Connection, into: Table, source_tables: MetaData, move: ArtifactMove | None
) -> int:
    origin = source_tables.tables.get(into.name)
    if origin is None:
        return 0
    missing = set(origin.columns.keys()) - set(into.columns.keys())
    if missing:
        raise Refused(f"table {into.name} of the MLflow store has columns {sorted(missing)} the target lacks")
    # A column the database computes from the others (spans.duration_ns, from a span's start and end) is
    # computed again in the target, which refuses a value for it.
    columns = [origin.c[c.name] for c in into.columns if c.name in origin.c and c.computed is None]
    copied = 0
    try:
        found = source.execution_options(yield_per=_BATCH).execute(select(*columns)).mappings()
        for batch in found.partitions():
            rows = [dict(row) for row in batch]
            target.execute(insert(into), [move.rewrite(row) for row in rows] if move else rows)
            copied += len(batch)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            what=f"copying table {into.name}", where=redact(str(target.engine.url)), reason=_reason(exc)
        ) from None
    return copied


def copy_tracking(
    workspace: str, source_url: str, target_url: str, move: ArtifactMove | None = None
) -> TrackingCopy:
    """Copy every row of the MLflow database at ``source_url`` into an empty one at ``target_url`` (created
    and migrated when missing), in one transaction: a failure leaves the target as it was. With ``move``,
    the runs' artifacts are copied to its new root first, and the rows name them there."""
    if not _is_database(source_url):
        raise Refused(
            f"{workspace}'s MLflow store {redact(source_url)} is not a database loopline reads (a tracking "
            "server's is moved with the server's own database tools); nothing to copy from here"
        )
    if not _is_database(target_url):
        raise UsageError(
            f"--to '{target_url}' is not a database URL; moving an MLflow store copies its database, so give "
            "one such as postgresql://user@host/mlflow_dev or sqlite:///path/mlflow.db"
        )
    if make_url(source_url) == make_url(target_url):
        raise UsageError(f"--to names {workspace}'s MLflow store itself; give the URL of another database")
    engine = _create(target_url)
    try:
        with _snapshot(source_url) as reader, _connected(engine, target_url) as writer:
            _require_same_schema(reader, writer, source_url)
            target_tables, source_tables = MetaData(), MetaData()
            target_tables.reflect(writer)
            source_tables.reflect(reader)
            tables = [t for t in target_tables.sorted_tables if t.name != _VERSION_TABLE]
            _require_empty(writer, tables, target_url)
            files = move.copy_files() if move else 0
            for table in reversed(tables):
                writer.execute(table.delete())
            rows = {
                str(table.name): _copy_table(reader, writer, table, source_tables, move) for table in tables
            }
            if engine.dialect.name == "postgresql":
                reset_sequences(writer, tables)
    finally:
        engine.dispose()
    copied = {name: count for name, count in rows.items() if count}
    return TrackingCopy(
        workspace, redact(source_url), redact(target_url), copied, move.new if move else None, files
    )


def artifact_now(db: Database, workspace: str, uri: str) -> str:
    """A run artifact's URI as recorded before its workspace's artifacts moved (the audit log keeps
    URIs as they were), as it is named now: every recorded move, oldest first."""
    from loopline import audit
    from loopline.events import TrackingMigrated

    for record in audit.query(db, workspace=workspace, kind=TrackingMigrated.kind):
        old, new = record.event.details.get("artifacts_from"), record.event.details.get("artifacts")
        if old and new:
            uri = ArtifactMove(old, new).moved(uri)
    return uri

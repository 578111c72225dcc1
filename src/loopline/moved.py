"""A project folder moved or renamed with its embedded stores (``mv churn churn-model``, a disk mounted
elsewhere): MLflow keeps absolute paths of the folder they were made in.

A workspace's SQLite store names its experiments' artifact folders, its runs' files and its model
versions' sources as ``file:///old/folder/...``: MLflow would write a new run's files into the old
folder (making it again) and a stock client would load a version from there. ``moved_from`` finds the
folder a store names, and ``relocate`` (run by ``loopline up``) points those paths at the project's folder
as it is now, in one transaction per store. loopline's own reads of a version's files find them in the
workspace's model store as configured (``storage.models.store_holding``), so serving, batch jobs and
releases go on without it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from loopline.errors import NotProvisioned, StoreUnavailable
from loopline.mlflow_store import WorkspaceStore

__all__ = ["moved_from", "refuse_moved", "relocate"]

# (table, column) of MLflow's SQL schema that hold a file URI: experiments' and runs' artifact folders,
# logged models' folders, versions' sources and storage locations (MLflow 3 adds the last two tables'
# columns; an older store lacks them).
_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def _database(store: WorkspaceStore) -> Path | None:
    """The SQLite file of a workspace whose store is one here, where it exists (None for any other)."""
    path = store.sqlite_file()
    return path if path is not None and path.is_file() else None


def _columns(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """The (table, column) pairs of ``_COLUMNS`` this store has."""
    found = []
    for table, column in _COLUMNS:
        names = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column in names:
            found.append((table, column))
    return found


def _old_folder(uri: str, root: Path, inside: list[str]) -> str | None:
    """The ``file://`` URI of the project folder ``uri`` names a file in, where that is another folder than
    ``root``: the part of it before one of the project's own folders ``inside`` (relative to the project,
    as the configuration names them). Both as ``Path.as_uri`` writes them (and MLflow keeps them)."""
    if not uri.startswith("file:///"):
        return None
    for relative in inside:
        marker = f"/{quote(relative)}"
        at = uri.find(f"{marker}/")
        if at < 0 and uri.endswith(marker):
            at = len(uri) - len(marker)
        if at > len("file://") and uri[:at] != root.as_uri():
            return uri[:at]
    return None


def _inside(store: WorkspaceStore, root: Path) -> list[str]:
    """The project's own folders the workspace keeps files in (its artifact and model store folders),
    relative to the project."""
    folders = []
    for location in (store.location.artifact_location, store.location.model_store):
        if location and "://" not in location:
            path = (root / location).resolve()
            if path.is_relative_to(root):
                folders.append(path.relative_to(root).as_posix())
    return [folder for folder in folders if folder not in ("", ".")]


def moved_from(store: WorkspaceStore, root: Path) -> str | None:
    """The folder the workspace's SQLite store names its files in, where the project was there before
    (None: not moved, or not a store of this project's folder)."""
    database, inside = _database(store), _inside(store, root.resolve())
    if database is None or not inside:
        return None
    with closing(sqlite3.connect(database)) as connection:
        for table, column in _columns(connection):
            query = f"SELECT {column} FROM {table} WHERE {column} LIKE 'file://%' LIMIT 50"
            for (uri,) in connection.execute(query):
                if (old := _old_folder(uri, root.resolve(), inside)) is not None:
                    return old
    return None


def refuse_moved(store: WorkspaceStore, root: Path) -> None:
    """Refuse to train into a store that names the project's files in the folder it was moved from."""
    if (old := moved_from(store, root)) is not None:
        raise NotProvisioned(
            f"the project was moved from {_shown(old)} to {root.resolve()}, and {store.name}'s MLflow store "
            f"still names its files there; run `loopline up` in {root} to point it at this folder"
        )


def _shown(uri: str) -> str:
    """A folder's ``file://`` URI as its path."""
    return unquote(urlparse(uri).path)


def relocate(store: WorkspaceStore, root: Path) -> list[str]:
    """Point the paths the workspace's SQLite store names under the folder the project was moved from at
    the project's folder now; what changed (nothing where it was not moved)."""
    old = moved_from(store, root)
    if old is None:
        return []
    database, new = _database(store), root.resolve()
    assert database is not None
    before, after = f"{old}/", f"{new.as_uri()}/"
    changed = 0
    try:
        with closing(sqlite3.connect(database)) as connection, connection:
            for table, column in _columns(connection):
                changed += connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE substr({column}, 1, ?) = ?",
                    (after, len(before) + 1, len(before), before),
                ).rowcount
    except sqlite3.Error as error:
        raise StoreUnavailable(
            what=f"{store.name}'s MLflow store", where=str(database), reason=str(error)
        ) from None
    return [f"{store.name}'s MLflow store: {changed} paths under {_shown(old)} now under {new} (moved)"]

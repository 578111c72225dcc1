"""Moving every version's model files to another model store at once (a laptop's folder to the team's
object store), rather than one by one as each is next shared, released or deployed: the files are copied
and checked against their digest, then loopline's catalog and deployments, and the MLflow stores that are
databases, name them at their new place. Nothing is deleted where they were."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Table, select, text, update
from sqlalchemy.pool import NullPool

from loopline import audit
from loopline.config import redact
from loopline.errors import LooplineError
from loopline.events import ModelsMigrated
from loopline.instance import Instance
from loopline.state import new_engine
from loopline.state.schema import metadata
from loopline.storage.models import ModelStore, model_store_of

__all__ = ["ModelsMoved", "move_models"]


@dataclass(frozen=True)
class ModelsMoved:
    """What was copied and repointed."""

    target: str
    digests: int
    """File sets the target holds now for the versions loopline knows."""
    copied: int
    """Of those, the ones whose bytes were copied by this move (the others were there already)."""
    rows: dict[str, int]
    """loopline's rows (catalog, deployments) that name the new place, by table."""
    mlflow: dict[str, int]
    """MLflow versions whose source names the new place, by workspace."""
    missing: list[str] = field(default_factory=list)
    """Versions whose files no store this machine reads holds: left as they were."""
    kept: list[str] = field(default_factory=list)
    """Workspaces on a tracking server, whose MLflow sources loopline cannot change."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _pinning_tables() -> list[Table]:
    """loopline's tables whose rows pin model files: a digest and the URI of the files."""
    return [t for t in metadata.sorted_tables if {"content_digest", "source_uri"} <= set(t.columns.keys())]


def _holder(instance: Instance, digest: str, sources: set[str]) -> ModelStore | None:
    """A store of this machine that holds ``digest``: one a recorded source names, or a workspace's."""
    openers: list[Callable[[], ModelStore]] = [partial(model_store_of, s) for s in sorted(sources)]
    openers += [partial(instance.model_store, w) for w in instance.store_names]
    for opener in openers:
        try:
            store = opener()
            if store.contains(digest):
                return store
        except (LooplineError, OSError, ValueError):  # a source no store of this machine reads
            continue
    return None


def _repoint_mlflow(
    instance: Instance, versions: list[Any], moved: dict[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Set the source of every catalog version (``versions``, the catalog's rows as they were before the
    move) whose files moved, in each workspace's MLflow database."""
    counts: dict[str, int] = {}
    kept: list[str] = []
    by_workspace: dict[str, list[Any]] = defaultdict(list)
    for row in versions:
        if row["content_digest"] in moved and row["source_uri"] != moved[row["content_digest"]]:
            by_workspace[row["workspace"]].append(row)
    statement = text(
        "UPDATE model_versions SET source = :new, storage_location = CASE WHEN storage_location = :old "
        "THEN :new ELSE storage_location END WHERE name = :name AND version = :version AND source = :old"
    )
    for workspace, rows in sorted(by_workspace.items()):
        location = instance.store(workspace).location
        if location.on_tracking_server or location.registry_uri != location.tracking_uri:
            kept.append(workspace)
            continue
        engine = new_engine(location.registry_uri, poolclass=NullPool)
        try:
            with engine.begin() as writer:
                counts[workspace] = sum(
                    writer.execute(
                        statement,
                        {
                            "new": moved[row["content_digest"]],
                            "old": row["source_uri"],
                            "name": row["name"],
                            "version": row["version"],
                        },
                    ).rowcount
                    for row in rows
                )
        finally:
            engine.dispose()
    return counts, kept


def move_models(instance: Instance, target: ModelStore) -> ModelsMoved:
    """Copy the files of every version loopline's catalog and deployments pin into ``target`` (checked
    against their digest), then repoint MLflow's sources and loopline's rows at them; the move is audited.
    Running it again copies and changes nothing more."""
    tables = _pinning_tables()
    sources: dict[str, set[str]] = defaultdict(set)
    pinned: dict[str, list[str]] = defaultdict(list)
    versions: list[Any] = []
    with instance.db.read() as connection:
        for table in tables:
            for row in connection.execute(select(table)).mappings():
                sources[row["content_digest"]].add(row["source_uri"])
                if table.name == "model_versions":
                    versions.append(row)
                    pinned[row["content_digest"]].append(
                        f"{row['workspace']}/{row['name']} v{row['version']}"
                    )
    moved: dict[str, str] = {}
    missing: list[str] = []
    copied = 0
    for digest in sorted(sources):
        holder = target if target.contains(digest) else _holder(instance, digest, sources[digest])
        if holder is None:
            missing += pinned[digest] or [digest[:19]]
            continue
        copied += target.copy_from(holder, digest)
        moved[digest] = target.source(digest)
    mlflow, kept = _repoint_mlflow(instance, versions, moved)
    rows: dict[str, int] = {}
    with instance.db.write() as writer:
        for table in tables:
            changed = sum(
                writer.execute(
                    update(table)
                    .where(table.c.content_digest == digest, table.c.source_uri != uri)
                    .values(source_uri=uri)
                ).rowcount
                for digest, uri in moved.items()
            )
            if changed:
                rows[str(table.name)] = changed
        result = ModelsMoved(redact(target.location), len(moved), copied, rows, mlflow, missing, kept)
        audit.append(
            writer,
            ModelsMigrated(actor=instance.actor, target=result.target, details=result.to_dict()),
        )
    return result

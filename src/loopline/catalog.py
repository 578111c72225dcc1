"""loopline's catalog of the model versions it made: fast lookups by commit, without opening MLflow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from loopline.domain import SHARED, CommitRef, ModelVersionInfo, Provenance, utcnow
from loopline.errors import InvalidReference, NotFound
from loopline.state import Database, as_utc
from loopline.state.schema import aliases, model_versions

__all__ = [
    "add",
    "delete_alias",
    "find_by_commit",
    "how_versions_arrive",
    "list_versions",
    "renumber",
    "resolve_commit",
    "set_alias",
]


def _drop(connection: Connection, workspace: str, name: str, number: int) -> None:
    """Forget the catalog's version ``number`` of a workspace's model, and its aliases: its workspace's
    MLflow registry has given that number to other files (it numbers anew once a whole registered model is
    deleted), so the entry names nothing there any more."""
    connection.execute(
        delete(model_versions).where(
            model_versions.c.workspace == workspace,
            model_versions.c.name == name,
            model_versions.c.version == number,
        )
    )
    connection.execute(
        delete(aliases).where(
            aliases.c.workspace == workspace, aliases.c.name == name, aliases.c.version == number
        )
    )


def add(connection: Connection, info: ModelVersionInfo, actor: str) -> None:
    """Record ``info`` unless the catalog already has that workspace's version (an entry under its number
    for another commit or other files gives way: MLflow gave the number to ``info``)."""
    found = connection.execute(
        select(model_versions.c.git_commit, model_versions.c.content_digest).where(
            model_versions.c.workspace == info.workspace,
            model_versions.c.name == info.name,
            model_versions.c.version == info.version,
        )
    ).first()
    if found is not None and tuple(found) == (info.git_commit, info.content_digest):
        return
    if found is not None:
        _drop(connection, info.workspace, info.name, info.version)
    connection.execute(
        insert(model_versions).values(
            workspace=info.workspace,
            name=info.name,
            version=info.version,
            git_commit=info.git_commit,
            git_branch=info.git_branch,
            git_dirty=info.git_dirty,
            diff_digest=info.diff_digest,
            content_digest=info.content_digest,
            source_uri=info.source_uri,
            run_id=info.run_id,
            source_workspace=info.source_workspace,
            validation_status=info.validation_status,
            created_at=info.created_at or utcnow(),
            created_by=actor,
            provenance=info.provenance.value,
            provenance_detail=info.provenance_detail or None,
        )
    )


def delete_alias(connection: Connection, workspace: str, name: str, alias: str) -> None:
    """Take ``alias`` off a workspace's model."""
    connection.execute(
        delete(aliases).where(
            aliases.c.workspace == workspace, aliases.c.name == name, aliases.c.alias == alias
        )
    )


def set_alias(connection: Connection, workspace: str, name: str, alias: str, version: int) -> None:
    """Point ``alias`` of a workspace's model at ``version``."""
    connection.execute(
        delete(aliases).where(
            aliases.c.workspace == workspace, aliases.c.name == name, aliases.c.alias == alias
        )
    )
    connection.execute(insert(aliases).values(workspace=workspace, name=name, alias=alias, version=version))


def renumber(connection: Connection, version: ModelVersionInfo, new: int) -> list[str]:
    """Give the catalog's ``version`` the number ``new``, the one its workspace's MLflow registry gave the
    same files, registered there again, and its aliases with it; the aliases it had."""
    workspace, name, old = version.workspace, version.name, version.version
    where = (model_versions.c.workspace == workspace, model_versions.c.name == name)
    if new != old:
        _drop(connection, workspace, name, new)  # MLflow gave ``new`` to these files: what it named is gone
        connection.execute(
            update(model_versions).where(*where, model_versions.c.version == old).values(version=new)
        )
    pointed = (aliases.c.workspace == workspace, aliases.c.name == name, aliases.c.version == old)
    names = sorted(row[0] for row in connection.execute(select(aliases.c.alias).where(*pointed)))
    connection.execute(update(aliases).where(*pointed).values(version=new))
    return names


def set_validation(connection: Connection, workspace: str, name: str, version: int, status: str) -> None:
    """Record a version's validation status."""
    connection.execute(
        update(model_versions)
        .where(
            model_versions.c.workspace == workspace,
            model_versions.c.name == name,
            model_versions.c.version == version,
        )
        .values(validation_status=status)
    )


def _info(row: Any, alias_map: dict[tuple[str, str, int], list[str]]) -> ModelVersionInfo:
    key = (row["workspace"], row["name"], row["version"])
    return ModelVersionInfo(
        workspace=row["workspace"],
        name=row["name"],
        version=row["version"],
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        git_dirty=bool(row["git_dirty"]),
        diff_digest=row["diff_digest"],
        content_digest=row["content_digest"],
        source_uri=row["source_uri"],
        run_id=row["run_id"],
        source_workspace=row["source_workspace"],
        validation_status=row["validation_status"],
        created_at=as_utc(row["created_at"]),
        aliases=tuple(sorted(alias_map.get(key, []))),
        provenance=Provenance(row["provenance"]),
        provenance_detail=row["provenance_detail"] or {},
    )


def _fetch(connection: Connection, statement: Any) -> list[ModelVersionInfo]:
    rows = connection.execute(statement).mappings().all()
    alias_map: dict[tuple[str, str, int], list[str]] = {}
    if rows:
        for alias in connection.execute(select(aliases)).mappings():
            key = (alias["workspace"], alias["name"], alias["version"])
            alias_map.setdefault(key, []).append(alias["alias"])
    return [_info(row, alias_map) for row in rows]


def list_versions(
    db: Database, *, workspace: str | None = None, name: str | None = None, commit: str | None = None
) -> list[ModelVersionInfo]:
    """Catalogued versions, by workspace, name and version."""
    statement = select(model_versions)
    if workspace:
        statement = statement.where(model_versions.c.workspace == workspace)
    if name:
        statement = statement.where(model_versions.c.name == name)
    if commit:
        statement = statement.where(model_versions.c.git_commit.startswith(commit.lower()))
    statement = statement.order_by(
        model_versions.c.workspace, model_versions.c.name, model_versions.c.version
    )
    with db.read() as connection:
        return _fetch(connection, statement)


def find_by_commit(
    db: Database, workspace: str, name: str, commit: str, diff_digest: str | None = None
) -> ModelVersionInfo | None:
    """The newest version of ``name`` in ``workspace`` made from exactly ``commit`` (and diff), if any."""
    statement = (
        select(model_versions)
        .where(
            model_versions.c.workspace == workspace,
            model_versions.c.name == name,
            model_versions.c.git_commit == commit,
            model_versions.c.diff_digest.is_(None)
            if diff_digest is None
            else model_versions.c.diff_digest == diff_digest,
        )
        .order_by(model_versions.c.version.desc())
        .limit(1)
    )
    with db.read() as connection:
        found = _fetch(connection, statement)
    return found[0] if found else None


# How versions reach each workspace, for the messages about a version one lacks.
_ARRIVE = {
    "dev": "the inner loop registers versions there: loopline inner-loop at the commit",
    "test": "outer-loop test brings versions there from the registry: loopline outer-loop test --commit {}",
    "prod": "releases bring versions there from the registry: loopline outer-loop prod --commit {}",
}


def how_versions_arrive(workspace: str, commit: str = "SHA") -> str:
    """How a version of a model reaches ``workspace`` (the command naming ``commit``)."""
    return _ARRIVE.get(workspace, "the inner loop shares versions there").format(commit)


def _commits(connection: Connection, workspace: str, name: str, prefix: str) -> list[str]:
    rows = connection.execute(
        select(model_versions.c.git_commit)
        .distinct()
        .where(
            model_versions.c.workspace == workspace,
            model_versions.c.name == name,
            model_versions.c.git_commit.startswith(prefix),
        )
    ).all()
    return sorted(row[0] for row in rows)


def resolve_commit(db: Database, workspace: str, name: str, ref: CommitRef) -> str:
    """The full SHA of the one commit starting with ``ref`` among ``workspace``'s versions of ``name``."""
    with db.read() as connection:
        commits = _commits(connection, workspace, name, ref.text)
        shared = [] if commits or workspace == SHARED else _commits(connection, SHARED, name, ref.text)
    if not commits and len(shared) == 1:
        raise NotFound(
            f"commit {ref.text}'s version of '{name}' is in the shared registry, never brought to "
            f"{workspace}; {how_versions_arrive(workspace, ref.text)}"
        )
    if not commits:
        raise NotFound(
            f"no version of '{name}' in {workspace} comes from a commit starting with {ref.text}; "
            "`loopline status` lists each workspace's versions with their commits"
        )
    if len(commits) > 1:
        shown = ", ".join(c[:12] for c in commits[:5])
        raise InvalidReference(
            f"commit prefix {ref.text} is ambiguous in {workspace} ({shown}); give more digits"
        )
    return str(commits[0])


def version_for_commit(db: Database, workspace: str, name: str, commit: str) -> ModelVersionInfo:
    """``workspace``'s version of ``name`` made from ``commit`` (a full SHA, or a unique prefix of 7+): of
    several, the newest clean one (made from a committed tree) before any made from a dirty one."""
    ref = CommitRef(commit)
    full = ref.text if ref.is_full else resolve_commit(db, workspace, name, ref)
    listed = list_versions(db, workspace=workspace, name=name, commit=full)
    found = [v for v in listed if v.git_commit == full]
    if not found:
        raise NotFound(f"commit {full[:7]} has no version of '{name}' in {workspace}")
    return sorted(found, key=lambda v: (not v.git_dirty, v.version))[-1]

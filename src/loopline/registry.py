"""Registering model versions in a workspace and sharing them through the shared registry.

MLflow holds each version (so stock MLflow clients see it); loopline's catalog and audit log record it
in the same breath. A version is created in MLflow with all its tags in one call, so it is never
visible half-made; when a crash falls between MLflow and the catalog, the next run notices the
version in MLflow and records it (``recover``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

from loopline import audit, catalog, failpoints
from loopline.domain import PRODUCTION, SHARED, ModelVersionInfo, Provenance
from loopline.events import Event, Promoted, Registered, Shared
from loopline.instance import Instance
from loopline.mlflow_store import VersionInfo

__all__ = [
    "TAG_BRANCH",
    "TAG_COMMIT",
    "TAG_DIFF",
    "TAG_DIGEST",
    "TAG_DIRTY",
    "TAG_PROVENANCE",
    "TAG_PROVENANCE_DETAIL",
    "TAG_SOURCE_RUN",
    "TAG_SOURCE_WORKSPACE",
    "TAG_VALIDATION",
    "TAG_WITHDRAWN",
    "copy_version",
    "find",
    "in_mlflow",
    "mark_withdrawn",
    "provenance_tags",
    "register",
    "register_again",
    "set_alias",
    "set_production",
    "set_validation",
    "share",
]

TAG_COMMIT = "git_commit"
TAG_BRANCH = "git_branch"
TAG_DIRTY = "git_dirty"
TAG_DIFF = "git_diff_digest"
TAG_SOURCE_WORKSPACE = "source_workspace"
TAG_SOURCE_RUN = "source_run_id"
TAG_DIGEST = "content_digest"
TAG_VALIDATION = "validation_status"
TAG_PROMOTED_FROM = "promoted_from"
TAG_VALIDATION_REPORT = "validation_report"
TAG_PROVENANCE = "provenance"
TAG_PROVENANCE_DETAIL = "provenance_detail"
TAG_RESTORED_FROM = "restored_from"
TAG_WITHDRAWN = "withdrawn"


def identity_filter(commit: str, diff_digest: str | None) -> dict[str, str]:
    """The tags that identify the versions of one commit (and one uncommitted diff)."""
    tags = {TAG_COMMIT: commit, TAG_DIRTY: "true" if diff_digest else "false"}
    if diff_digest:
        tags[TAG_DIFF] = diff_digest
    return tags


def _info(workspace: str, version: VersionInfo) -> ModelVersionInfo:
    tags = version.tags
    return ModelVersionInfo(
        workspace=workspace,
        name=version.name,
        version=version.version,
        git_commit=tags[TAG_COMMIT],
        git_branch=tags.get(TAG_BRANCH, ""),
        git_dirty=tags.get(TAG_DIRTY) == "true",
        diff_digest=tags.get(TAG_DIFF),
        content_digest=tags[TAG_DIGEST],
        source_uri=version.source,
        run_id=tags.get(TAG_SOURCE_RUN),
        source_workspace=tags.get(TAG_SOURCE_WORKSPACE, "dev"),
        validation_status=tags.get(TAG_VALIDATION),
        aliases=version.aliases,
        provenance=Provenance(tags.get(TAG_PROVENANCE, Provenance.BUILT_HERE)),
        provenance_detail=json.loads(tags.get(TAG_PROVENANCE_DETAIL) or "{}"),
    )


def find(
    instance: Instance, workspace: str, name: str, commit: str, diff_digest: str | None
) -> ModelVersionInfo | None:
    """The newest version of ``name`` from this commit in ``workspace``, asking MLflow itself.

    A version MLflow has but the catalog lacks (a crash fell between the two) is recorded now.
    """
    found = instance.store(workspace).versions(name, identity_filter(commit, diff_digest))
    complete = [v for v in found if TAG_DIGEST in v.tags]
    if not complete:
        return None
    info = _info(workspace, complete[-1])
    if catalog.find_by_commit(instance.db, workspace, name, commit, diff_digest) is None:
        kind = {SHARED: Shared, "dev": Registered}.get(workspace, Promoted)
        _record(
            instance,
            info,
            kind(
                actor=instance.actor,
                workspace=workspace,
                model=name,
                version=info.version,
                git_commit=commit,
                target=f"{workspace}/{name}/{info.version}",
                details={"recovered": True, "content_digest": info.content_digest},
            ),
        )
    return info


def in_mlflow(instance: Instance, info: ModelVersionInfo) -> bool:
    """Whether the MLflow registry of ``info``'s workspace still holds it, with its files. Someone may delete
    a version there (the MLflow UI, a client's ``delete_model_version``), and MLflow may then give its
    number to a later version."""
    found = instance.store(info.workspace).version(info.name, info.version)
    return found is not None and found.tags.get(TAG_DIGEST) == info.content_digest


def register_again(instance: Instance, info: ModelVersionInfo) -> int:
    """The number of ``info``'s files in its workspace's MLflow registry, where it no longer holds ``info``:
    a version of them registered again (by an earlier call that a crash cut short), else a new one with
    ``info``'s tags and ``restored_from``."""
    store = instance.store(info.workspace)
    again = [
        v
        for v in store.versions(info.name, identity_filter(info.git_commit, info.diff_digest))
        if v.tags.get(TAG_DIGEST) == info.content_digest and v.version != info.version
    ]
    if again:
        return again[-1].version
    tags = {**identity_tags(info), TAG_RESTORED_FROM: f"{info.workspace}/{info.version}"}
    if info.validation_status:
        tags[TAG_VALIDATION] = info.validation_status
    return store.create_version(info.name, info.source_uri, tags)


def _record(instance: Instance, info: ModelVersionInfo, event: Event) -> None:
    with instance.db.write() as connection:
        catalog.add(connection, info, instance.actor)
        audit.append(connection, event)


def register(
    instance: Instance,
    workspace: str,
    name: str,
    digest: str,
    tags: dict[str, str],
    *,
    run_id: str | None = None,
    model_id: str | None = None,
) -> ModelVersionInfo:
    """Register the model files ``digest`` (already in the workspace's model store) as a new version."""
    store = instance.store(workspace)
    source = instance.model_store(workspace).source(digest)
    version = store.create_version(
        name, source, {**tags, TAG_DIGEST: digest}, run_id=run_id, model_id=model_id
    )
    info = _info(
        workspace,
        VersionInfo(
            name=name,
            version=version,
            source=source,
            run_id=run_id,
            tags={**tags, TAG_DIGEST: digest},
            aliases=(),
        ),
    )
    _record(
        instance,
        info,
        Registered(
            actor=instance.actor,
            workspace=workspace,
            model=name,
            version=version,
            git_commit=info.git_commit,
            target=f"{workspace}/{name}/{version}",
            details={"content_digest": digest, "run_id": run_id},
        ),
    )
    return info


def copy_version(
    instance: Instance, source: ModelVersionInfo, workspace: str, event: type[Event] = Shared
) -> ModelVersionInfo:
    """Register ``source`` as a version in another store, moving its files by digest.

    On the same model store no byte is copied; on another the files are copied once and verified. The
    new version carries the source's identity tags (commit, branch, dirt, the workspace and run that made
    it, the digest) and ``promoted_from``.
    """
    here = instance.model_store_holding(source)
    there = instance.model_store(workspace)
    copied = there.copy_from(here, source.content_digest)
    failpoints.hit(f"copy-to-{workspace}-after-files")
    tags = identity_tags(source)
    tags[TAG_PROMOTED_FROM] = f"{source.workspace}/{source.version}"
    uri = there.source(source.content_digest)
    version = instance.store(workspace).create_version(source.name, uri, tags)
    info = _info(
        workspace,
        VersionInfo(name=source.name, version=version, source=uri, run_id=None, tags=tags, aliases=()),
    )
    _record(
        instance,
        info,
        event(
            actor=instance.actor,
            workspace=workspace,
            model=source.name,
            version=version,
            git_commit=source.git_commit,
            source=f"{source.workspace}/{source.name}/{source.version}",
            target=f"{workspace}/{source.name}/{version}",
            details={"content_digest": source.content_digest, "bytes_copied": copied},
        ),
    )
    failpoints.hit(f"copy-to-{workspace}-after-register")
    return info


def identity_tags(source: ModelVersionInfo) -> dict[str, str]:
    """The tags that travel with a version from store to store."""
    tags = {
        TAG_COMMIT: source.git_commit,
        TAG_BRANCH: source.git_branch,
        TAG_DIRTY: "true" if source.git_dirty else "false",
        TAG_SOURCE_WORKSPACE: source.source_workspace,
        TAG_DIGEST: source.content_digest,
    }
    if source.run_id:
        tags[TAG_SOURCE_RUN] = source.run_id
    if source.diff_digest:
        tags[TAG_DIFF] = source.diff_digest
    tags.update(provenance_tags(source.provenance, source.provenance_detail))
    return tags


def provenance_tags(provenance: Provenance, detail: dict[str, Any]) -> dict[str, str]:
    """A version's provenance as MLflow tags (they travel with it from store to store)."""
    tags = {TAG_PROVENANCE: provenance.value}
    if detail:
        tags[TAG_PROVENANCE_DETAIL] = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    return tags


def share(instance: Instance, source: ModelVersionInfo) -> ModelVersionInfo:
    """Copy a workspace's version into the shared registry: by reference on the same storage."""
    return copy_version(instance, source, SHARED, Shared)


def set_validation(
    instance: Instance, version: ModelVersionInfo, status: str, report_uri: str
) -> ModelVersionInfo:
    """Mark a version ``validation_status`` passed or failed, with its report, in MLflow and the catalog."""
    store = instance.store(version.workspace)
    store.set_version_tag(version.name, version.version, TAG_VALIDATION, status)
    store.set_version_tag(version.name, version.version, TAG_VALIDATION_REPORT, report_uri)
    with instance.db.write() as connection:
        catalog.set_validation(connection, version.workspace, version.name, version.version, status)
    return replace(version, validation_status=status)


def mark_withdrawn(
    instance: Instance, version: ModelVersionInfo, why: str | None, before: str | None = None
) -> None:
    """Tag every copy of ``version``'s files (dev, the registry, test, prod) ``withdrawn`` with ``why``, or
    take the tag off (``why`` None), so MLflow's UI and stock MLflow clients reading tags see what loopline
    refuses. All or nothing: where a store fails, the copies already changed go back to ``before``."""
    copies = [
        found
        for found in catalog.list_versions(instance.db, name=version.name)
        if found.content_digest == version.content_digest
    ]
    done: list[ModelVersionInfo] = []
    try:
        for copy in copies:
            _tag_withdrawn(instance, copy, why)
            done.append(copy)
    except BaseException:
        for copy in reversed(done):
            with contextlib.suppress(Exception):  # the error being raised says which store failed
                _tag_withdrawn(instance, copy, before)
        raise


def _tag_withdrawn(instance: Instance, copy: ModelVersionInfo, why: str | None) -> None:
    store = instance.store(copy.workspace)
    if why is None:
        store.delete_version_tag(copy.name, copy.version, TAG_WITHDRAWN)
    else:
        store.set_version_tag(copy.name, copy.version, TAG_WITHDRAWN, why)


def set_production(instance: Instance, version: ModelVersionInfo, replaced: str | None) -> None:
    """Point the ``production`` alias at ``version``, now live on its workspace's endpoint in place of the
    model named ``replaced``: where that is another name (``model.name`` changed, or a rollback past the
    change), its alias goes, so that ``models:/NAME@production`` loads what is live under one name only."""
    set_alias(instance, version, PRODUCTION)
    if replaced is None or replaced == version.name:
        return
    instance.store(version.workspace).delete_alias(replaced, PRODUCTION)
    with instance.db.write() as connection:
        catalog.delete_alias(connection, version.workspace, replaced, PRODUCTION)


def set_alias(instance: Instance, version: ModelVersionInfo, alias: str) -> None:
    """Point a registered model's alias at ``version`` in MLflow and the catalog."""
    instance.store(version.workspace).set_alias(version.name, alias, version.version)
    with instance.db.write() as connection:
        catalog.set_alias(connection, version.workspace, version.name, alias, version.version)

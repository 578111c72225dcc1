"""The SDK: the audit log, loopline's database, users, roles, tokens and locks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.api._common import PathLike, provisioned
from loopline.api.results import CheckpointWritten
from loopline.errors import NotFound, Refused, UsageError, on_path, shorten
from loopline.instance import Instance

if TYPE_CHECKING:
    from loopline.access import TokenInfo, UserInfo
    from loopline.audit import Verification
    from loopline.datastore_move import DatastoresMoved
    from loopline.kubernetes import Manifests
    from loopline.mlflow_migrate import TrackingCopy
    from loopline.model_move import ModelsMoved
    from loopline.state.locks import LockInfo
    from loopline.state.migrate import MigrationResult


def _checkpoints(instance: Instance) -> str | None:
    """The configured checkpoint folder, a project-relative path made absolute."""
    location = instance.settings.config.audit.checkpoints
    if location is None or "://" in location or Path(location).is_absolute():
        return location
    return str(instance.root / location)


def audit_verify(
    *, checkpoint: dict[str, Any] | None = None, project: PathLike | None = None
) -> Verification:
    """Recompute the audit log's chain (HMACs with the audit key where events are keyed); check it against
    the newest checkpoint in ``audit.checkpoints`` and ``checkpoint`` (one kept elsewhere, such as a CI
    artifact): name every edited, deleted or reordered event, and a log cut short."""
    from loopline import audit

    instance = provisioned(project)
    marks = [audit.Checkpoint.from_dict(checkpoint)] if checkpoint is not None else []
    location = _checkpoints(instance)
    stored = audit.newest_checkpoint(location) if location else None
    return audit.verify(instance.db, [*marks, *([stored] if stored else [])])


def audit_checkpoint(*, project: PathLike | None = None) -> CheckpointWritten:
    """Sign the head of the audit log (sequence, hash, time) with the audit key and keep it in
    ``audit.checkpoints``; refused when the log does not verify."""
    from loopline import audit
    from loopline.errors import AuditLogAltered

    audit.signing_key()  # no key, no checkpoint: say so before anything else
    instance = provisioned(project)
    location = _checkpoints(instance)
    found = audit.verify(
        instance.db, [m for m in [audit.newest_checkpoint(location)] if m] if location else []
    )
    if not found.intact:
        raise AuditLogAltered(where="loopline's database", problem=found.problems[0]["problem"])
    mark = audit.checkpoint(instance.db)
    stored = audit.save_checkpoint(mark, location) if location else None
    return CheckpointWritten(mark.seq, mark.hash, mark.at, mark.keyed_from, mark.signature, stored)


def migrate_state(to: str, *, project: PathLike | None = None) -> MigrationResult:
    """Copy loopline's database, history and all, into an empty database at ``to``."""
    from loopline import audit
    from loopline.errors import AuditLogAltered
    from loopline.events import StateMigrated
    from loopline.state import Database, is_database_url
    from loopline.state.migrate import copy_state

    if not is_database_url(to):
        raise UsageError(
            "--to is not a database URL loopline can open; give one such as "
            "postgresql+psycopg://user@host/loopline or sqlite:///path/state.db"
        )
    instance = provisioned(project)
    target = Database(instance.settings.database_url(to))
    with on_path("write the database at", target.redacted_url, "give a database loopline may write"):
        result = copy_state(instance.db, target)
    copied = audit.verify(target)
    if not copied.intact:
        raise AuditLogAltered(where=target.redacted_url, problem=copied.problems[0]["problem"])
    audit.record(
        target,
        StateMigrated(
            actor=instance.actor, source=result.source, target=result.target, details={"rows": result.rows}
        ),
    )
    return result


def _require_no_work(instance: Instance) -> None:
    """Refuse a move of stores while a release, rollback or inner loop (anything holding a lock) runs."""
    from loopline.state.locks import live_locks

    busy = live_locks(instance.db)
    if busy:
        raise Refused(
            f"{busy[0].owner} holds the lock {busy[0].name} (on {busy[0].host}): a release, rollback or "
            "inner loop is writing to the stores; run the move again when it is done"
        )


def migrate_models(to: str, *, project: PathLike | None = None) -> ModelsMoved:
    """Copy every version's model files (the catalog's and the deployments') into the model store at
    ``to``, checked against their digest, and name them there in loopline and in MLflow's databases;
    then point every workspace's ``model_store`` there. Nothing is deleted where they were."""
    from loopline.model_move import move_models
    from loopline.storage.models import open_model_store

    instance = provisioned(project)
    _require_no_work(instance)
    target = open_model_store(_new_place(instance, to, "the model store"))
    return move_models(instance, target)


def migrate_datastores(
    *, inbox: str | None = None, predictions: str | None = None, project: PathLike | None = None
) -> DatastoresMoved:
    """Copy the files of the datastores named (``inbox``, ``predictions``: each a folder or an fsspec URL,
    az://, s3://, gs://) to their new places, and check every data asset version pinned in them there;
    then point ``datastores.<name>.url`` there. Nothing is deleted where they were."""
    from loopline.batch.jobs import list_jobs
    from loopline.datastore_move import move_datastores

    instance = provisioned(project)
    _require_no_work(instance)
    running = [job.id for job in list_jobs(instance) if job.status == "running"]
    if running:
        raise Refused(
            f"batch job {running[0]} is running and writes to the predictions datastore; let it finish first"
        )
    targets = {
        name: _new_place(instance, url, f"the {name} datastore")
        for name, url in (("inbox", inbox), ("predictions", predictions))
        if url is not None
    }
    return move_datastores(instance, targets)


def _new_place(instance: Instance, place: str, what: str) -> str:
    """Where a store moves to: a URL as it is, a folder (relative to the project) made now, so that a
    folder that cannot be made is said before anything is copied."""
    if "://" in place:
        return place
    folder = instance.root / Path(place).expanduser()
    with on_path(f"make {what} at", folder, "give a folder loopline may write"):
        folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def migrate_tracking(
    workspace: str, to: str, *, artifacts: str | None = None, project: PathLike | None = None
) -> TrackingCopy:
    """Copy a workspace's (or the shared registry's) MLflow database, runs, registered versions with their
    numbers and aliases, into an empty database at ``to``; then point its ``tracking_uri`` there. With
    ``artifacts`` (a folder or an MLflow artifact URL), the runs' artifacts are copied there too and the
    copy names them there: then point its ``artifact_location`` there as well."""
    from loopline import audit
    from loopline.events import TrackingMigrated
    from loopline.mlflow_migrate import ArtifactMove, copy_tracking
    from loopline.mlflow_store import artifact_root_uri

    instance = provisioned(project)
    instance.require_workspace(workspace)
    location = instance.store(workspace).location
    if location.registry_uri != location.tracking_uri:
        raise Refused(
            f"{workspace} keeps its model registry apart from its tracking store (registry_uri); "
            "moving such a workspace is not supported: copy both databases with your database's tools"
        )
    _require_no_work(instance)
    move = None
    if artifacts is not None:
        if location.artifact_location is None:
            raise UsageError(
                f"{workspace}'s artifacts are where its tracking server keeps them; leave out --artifacts"
            )
        dest = artifacts if "://" in artifacts else str(instance.root / Path(artifacts).expanduser())
        move = ArtifactMove(artifact_root_uri(location.artifact_location), artifact_root_uri(dest))
        if move.new == move.old or move.new.startswith(move.old + "/"):
            raise UsageError(
                f"--artifacts {artifacts} is {workspace}'s artifact location or inside it; give another"
            )
        _new_place(instance, artifacts, "the artifact store")
    copied = copy_tracking(workspace, location.tracking_uri, instance.settings.database_url(to), move)
    audit.record(
        instance.db,
        TrackingMigrated(
            actor=instance.actor,
            workspace=workspace,
            source=copied.source,
            target=copied.target,
            details={
                "rows": copied.rows,
                "artifacts_from": move.old if move else None,
                "artifacts": copied.artifacts,
                "files": copied.files,
            },
        ),
    )
    return copied


def _scope(instance: Instance, workspace: str) -> str:
    from loopline.access import ALL_WORKSPACES

    if workspace != ALL_WORKSPACES:
        instance.require_workspace(workspace)
    return workspace


def user_add(name: str, *, project: PathLike | None = None) -> UserInfo:
    """Add a control-plane user (with no roles until granted); adding an existing user changes nothing."""
    from loopline.access import add_user

    instance = provisioned(project)
    return add_user(instance.db, name, instance.actor)[0]


def user_list(*, project: PathLike | None = None) -> list[UserInfo]:
    """Every control-plane user and their roles."""
    from loopline.access import list_users

    return list_users(provisioned(project).db)


def user_grant(name: str, role: str | None, workspace: str, *, project: PathLike | None = None) -> UserInfo:
    """Give a user a role on a workspace (``*`` for every workspace); ``role=None`` takes it away."""
    from loopline.access import grant

    instance = provisioned(project)
    return grant(instance.db, name, role, _scope(instance, workspace), instance.actor)


def token_create(user: str, *, expires: str | None = None, project: PathLike | None = None) -> TokenInfo:
    """A new API token for a user (``expires`` like ``30d``); its secret is shown this once."""
    from loopline.access import create_token

    instance = provisioned(project)
    return create_token(instance.db, user, expires, instance.actor)


def token_list(user: str | None = None, *, project: PathLike | None = None) -> list[TokenInfo]:
    """Every API token's id, user, expiry and revocation (never a secret)."""
    from loopline.access import list_tokens

    return list_tokens(provisioned(project).db, user)


def token_revoke(token_id: str, *, project: PathLike | None = None) -> TokenInfo:
    """Revoke an API token by its id; it is refused from then on."""
    from loopline.access import revoke_token

    instance = provisioned(project)
    return revoke_token(instance.db, token_id, instance.actor)


def list_locks(*, project: PathLike | None = None) -> list[LockInfo]:
    """Every lock held now: its name, owner, host, process and lease."""
    from loopline.state.locks import list_locks as held

    return held(provisioned(project).db)


def unlock(name: str, *, reason: str | None = None, project: PathLike | None = None) -> LockInfo:
    """Break lock ``name`` whose holder cannot release it (a process gone for good); audited."""
    from loopline import audit
    from loopline.events import LockBroken
    from loopline.state.locks import break_lock

    instance = provisioned(project)
    with instance.db.write() as connection:
        broken = break_lock(connection, name)
        if broken is None:
            raise NotFound(f"nobody holds lock '{shorten(name, 120)}'; `loopline locks` lists the held ones")
        audit.append(
            connection,
            LockBroken(
                actor=instance.actor,
                target=name,
                reason=reason,
                details={"holder": broken.owner, "host": broken.host, "pid": broken.pid},
            ),
        )
    return broken


def k8s_render(
    workspace: str | None = None,
    *,
    image: str = "loopline:0.1.0",
    namespace: str = "loopline",
    replicas: int = 2,
    workers: int = 2,
    project: PathLike | None = None,
) -> Manifests:
    """Kubernetes manifests for ``workspace``'s serving replicas, or (no workspace) for the control plane;
    configuration in a ConfigMap, credentials from the Secret ``loopline-credentials``."""
    from loopline.kubernetes import render

    return render(
        Instance.open(project),
        workspace,
        namespace=namespace,
        image=image,
        replicas=replicas,
        workers=workers,
    )

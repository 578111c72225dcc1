"""The inner loop through the control plane: train here, upload the run, let the server gate and register.

The caller holds no database credentials, so training logs into a scratch MLflow store under
``.loopline/scratch``; the finished run (params, metrics with every logged step, tags, datasets, name,
experiment, artifacts and the logged model, and the training's other runs without files) is packed into
one tar.gz, uploaded with ``POST /v1/uploads``, and named in ``POST /v1/inner_loop``. The server imports
it into dev, evaluates *its own* gate file, registers and shares, exactly as a local inner loop.
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from loopline.errors import DirtyWorkingTree, TooLarge, UsageError, shorten
from loopline.run_record import RunRecord, own_tags, read_record
from loopline.storage.fs import local_path

if TYPE_CHECKING:
    from loopline.git import CommitIdentity
    from loopline.instance import Instance
    from loopline.loops.trained import Trained
    from loopline.mlflow_store import WorkspaceStore
    from loopline.progress import Reporter
    from loopline.remote.client import Client

__all__ = [
    "InnerLoopUpload",
    "UploadedIdentity",
    "UploadedRun",
    "begin",
    "chunks",
    "extract",
    "remote_inner_loop",
    "scratch",
    "unpack",
    "upload_run",
]

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
RECORD = "run.json"
"""The file of an uploaded run's record (its metric history, datasets, name, experiment, related runs)."""


class UploadedIdentity(BaseModel):
    """The commit the uploaded run was trained at."""

    model_config = ConfigDict(extra="forbid")

    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    branch: str = Field(max_length=255)
    dirty_files: list[str] = Field(default_factory=list, max_length=10_000)
    diff_digest: str | None = Field(default=None, max_length=80)


class UploadedRun(BaseModel):
    """The numbers of the uploaded run (its files are in the upload)."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class InnerLoopUpload(BaseModel):
    """The body of ``POST /v1/inner_loop``."""

    model_config = ConfigDict(extra="forbid")

    upload: str = Field(pattern=UPLOAD_ID.pattern, description="the id `POST /v1/uploads` answered")
    model: str | None = None
    allow_dirty: bool = False
    identity: UploadedIdentity
    run: UploadedRun
    attestation: str | None = Field(
        default=None, max_length=8192, description="the GitHub Actions OIDC token of the run, if any"
    )


def _pack(model_dir: Path, artifacts: Path | None, record: RunRecord, target: Path) -> None:
    with tarfile.open(target, "w:gz", compresslevel=1) as archive:
        archive.add(model_dir, arcname="model")
        if artifacts is not None and artifacts.is_dir():
            archive.add(artifacts, arcname="artifacts")
        text = record.to_json().encode()
        member = tarfile.TarInfo(RECORD)
        member.size, member.mtime, member.mode = len(text), int(time.time()), 0o644
        archive.addfile(member, io.BytesIO(text))


def extract(archive: Path, target: Path, max_bytes: int, max_files: int, what: str) -> None:
    """Extract an upload (a tar.gz of ``what``) safely: no links out, no absolute paths, at most
    ``max_files`` entries and ``max_bytes`` unpacked, checked before anything is written."""
    try:
        with tarfile.open(archive, "r:gz") as packed:
            total = 0
            for count, member in enumerate(packed, start=1):  # headers only, as it decompresses
                total += max(member.size, 0)
                if count > max_files:
                    raise TooLarge(
                        f"the upload holds more than {max_files} files (control_plane.max_upload_files)"
                    )
                if total > max_bytes:
                    raise TooLarge(
                        f"the upload unpacks to more than {max_bytes >> 20} MB "
                        "(control_plane.max_upload_expanded_mb)"
                    )
            packed.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise UsageError(f"the upload is not a valid tar.gz of {what}: {shorten(str(exc), 200)}") from None


def unpack(
    archive: Path, target: Path, max_bytes: int, max_files: int
) -> tuple[Path, Path | None, RunRecord]:
    """Extract an uploaded run safely (see :func:`extract`); the model folder, the run's artifacts and its
    record (an upload without one, from an earlier loopline, has an empty record)."""
    extract(archive, target, max_bytes, max_files, "a run")
    model = target / "model"
    if not (model / "MLmodel").is_file():
        raise UsageError("the upload holds no model/MLmodel; upload the folder MLflow logged the model into")
    artifacts = target / "artifacts"
    record = target / RECORD
    found = RunRecord.from_json(record.read_bytes()) if record.is_file() else RunRecord()
    return model, artifacts if artifacts.is_dir() else None, found


def chunks(path: Path) -> Iterator[bytes]:
    """The bytes of the file at ``path``, a MiB at a time (an upload's body, streamed)."""
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            yield chunk


def _registered(
    client: Client, instance: Any, model: str | None, identity: Any, watched: list[str] | None
) -> Any:
    """The "nothing to do" result when dev and the registry already have this commit (and diff), or when
    the commit changed none of ``watched`` (``training.paths``) since a commit they have."""
    from loopline.api import status
    from loopline.domain import SHARED
    from loopline.loops.inner import already_registered, unchanged
    from loopline.loops.training_runs import DEV

    name = instance.model_name(model)
    models = [m for m in client.call(status).models if m.name == name]
    found = {
        m.workspace: m
        for m in models
        if m.git_commit == identity.commit and m.diff_digest == identity.diff_digest
    }
    if DEV in found and SHARED in found:
        return already_registered(name, identity, found[DEV], found[SHARED])
    if watched and not identity.dirty:
        return unchanged(instance.root, name, identity, watched, models)
    return None


def begin(client: Client, arguments: dict[str, Any], instance: Instance) -> tuple[CommitIdentity, Any]:
    """This working tree's commit, and the "nothing to do" result where the control plane has it already."""
    from loopline.git import commit_identity
    from loopline.versions import watched_paths

    watched = watched_paths(instance)
    identity = commit_identity(instance.root, watched)
    if identity.dirty and not arguments.get("allow_dirty", False):
        raise DirtyWorkingTree(files=", ".join(identity.dirty_files[:5]))
    return identity, _registered(client, instance, arguments.get("model"), identity, watched)


def scratch(instance: Instance, folder: Path, fresh: bool) -> WorkspaceStore:
    """A scratch MLflow store in ``folder`` (emptied first when ``fresh``), in use as the instance's dev."""
    from loopline.loops.training_runs import DEV
    from loopline.mlflow_store import WorkspaceStore

    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    store = WorkspaceStore.scratch(folder, DEV)
    store.provision(instance.settings.experiment)
    instance.use_store(DEV, store)
    return store


def upload_run(
    client: Client,
    instance: Instance,
    identity: CommitIdentity,
    store: WorkspaceStore,
    made: Trained,
    arguments: dict[str, Any],
    report: Reporter,
) -> Any:
    """Upload the run ``made`` trained in ``store`` and have the control plane register it."""
    from loopline.attestation import request_token
    from loopline.operations import operations
    from loopline.remote.codec import signature

    run = store.run(made.run_id)
    run_artifacts = local_path(run.artifact_uri)
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "run.tar.gz"
        _pack(
            local_path(made.model_uri),
            run_artifacts,
            read_record(store, made.run_id, related=True, model_id=made.model_id),
            archive,
        )
        report.step(f"uploading the run ({archive.stat().st_size // 1024} KiB) to {client.url}")
        answer = client.post("uploads", chunks(archive), "application/gzip")
    body = InnerLoopUpload(
        upload=answer["upload"],
        model=arguments.get("model"),
        allow_dirty=bool(arguments.get("allow_dirty", False)),
        identity=UploadedIdentity(
            commit=identity.commit,
            branch=identity.branch,
            dirty_files=list(identity.dirty_files),
            diff_digest=identity.diff_digest,
        ),
        run=UploadedRun(
            params=run.params,
            metrics=made.metrics,
            tags=own_tags(run.tags),
        ),
    )
    body.attestation = request_token(instance.settings.config.registry.attestation.audience)
    report.step("registering through the control plane")
    result = client.post("inner_loop", orjson.dumps(body.model_dump(mode="json")))
    return signature(operations()["inner_loop"]).decode_result(result)


def remote_inner_loop(client: Client, arguments: dict[str, Any]) -> Any:
    """Train at this working tree's commit into a scratch store, upload the run, and register it remotely."""
    from loopline.compute.targets import resolve
    from loopline.instance import Instance
    from loopline.loops.training_runs import train
    from loopline.progress import NullReporter
    from loopline.remote.data import RemoteAssets

    instance = Instance.open(arguments.get("project"))
    report = arguments.get("reporter") or NullReporter()
    identity, done = begin(client, arguments, instance)
    if done is not None:
        return done  # a rerun (a retried workflow): training again would only make different bytes
    folder = instance.settings.state_dir / "scratch"
    store = scratch(instance, folder, fresh=True)
    target = resolve(instance.settings.config.compute, arguments.get("compute"))
    # training.inputs: the versions and their files are the control plane's
    made = train(instance, identity, report, target, assets=RemoteAssets(client))
    result = upload_run(client, instance, identity, store, made, arguments, report)
    shutil.rmtree(folder, ignore_errors=True)
    return result

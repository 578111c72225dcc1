"""Batch scoring jobs: a data asset in, Parquet predictions and their lineage out, in bounded memory.

The input (CSV or Parquet, one file or a folder) is read in chunks whose size is fixed when the job
starts (``batch.chunk_rows``, shrunk so one chunk stays under ``batch.max_chunk_mb``). Each chunk's
predictions are written as one Parquet part, whole or not at all; ``_lineage.json`` (model version,
commit, input digest, rows, duration) is written last, so a job that failed or was interrupted never
looks complete. Resuming a job skips the parts already written, so its output equals an uninterrupted
run's.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from loopline import audit, failpoints
from loopline.batch.service import get_batch_endpoint
from loopline.compute.chunks import part_bytes, part_name, plan
from loopline.compute.ray_batch import score_on_ray
from loopline.compute.targets import LOCAL, RayTarget, resolve
from loopline.data import DataAsset, get_asset, partition_values, verified_files
from loopline.domain import DeploymentInfo, pinned, utcnow
from loopline.errors import NotFound, Refused, UsageError
from loopline.events import BatchJobFinished
from loopline.instance import Instance
from loopline.progress import NullReporter, Reporter
from loopline.sandbox import SandboxedModel
from loopline.state import as_utc
from loopline.state.locks import Heartbeat, process_alive
from loopline.state.schema import batch_jobs
from loopline.storage.datastores import text_columns, with_partitions
from loopline.storage.fs import is_remote
from loopline.storage.models import model_store_of, store_holding
from loopline.withdrawn import refuse_withdrawn

__all__ = ["BatchJob", "get_job", "invoke", "list_jobs", "resume"]

LINEAGE = "_lineage.json"
SAMPLE_ROWS = 1000
HOST = socket.gethostname()
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0
"""A running job whose process has not shown it is alive for this long is taken to have died."""


@dataclass(frozen=True)
class BatchJob:
    """A batch job as loopline's database records it."""

    id: str
    endpoint: str
    deployment: str
    model: str
    version: int
    git_commit: str
    input: str
    input_digest: str
    status: str
    chunks_done: int
    chunk_rows: int
    rows: int
    output: str
    error: str | None
    started_at: str
    finished_at: str | None
    workspace: str = "prod"
    compute: str = "local"
    """Where it scores: ``local``, or the name of a Ray target."""
    keep: tuple[str, ...] = ()
    """Input columns its parts carry beside the answers, after ``row``."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def _job(row: Any) -> BatchJob:
    return BatchJob(
        row["id"],
        row["endpoint"],
        row["deployment"],
        row["model"],
        row["version"],
        row["git_commit"],
        f"{row['input_asset']}:{row['input_version']}",
        row["input_digest"],
        row["status"],
        row["chunks_done"],
        row["chunk_rows"],
        row["rows"],
        row["output"],
        row["error"],
        as_utc(row["started_at"]).isoformat(timespec="seconds"),
        as_utc(row["finished_at"]).isoformat(timespec="seconds") if row["finished_at"] else None,
        row["workspace"],
        row["compute"] or LOCAL,
        tuple(json.loads(row["keep"] or "[]")),
    )


def _alive(instance: Instance, job_id: str, claim: str | None = None) -> None:
    """This process is running the job (``claim``: from now on, as ``running``, on that compute target)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if claim is not None:
        values.update(status="running", error=None, host=HOST, pid=os.getpid(), compute=claim)
    with instance.db.write() as connection:
        connection.execute(update(batch_jobs).where(batch_jobs.c.id == job_id).values(**values))


def fail_stale(instance: Instance) -> int:
    """Mark failed the running jobs whose process ended (on this host) or stopped beating (anywhere);
    how many."""
    horizon = utcnow() - timedelta(seconds=STALE_SECONDS)
    with instance.db.read() as connection:
        running = (
            connection.execute(select(batch_jobs).where(batch_jobs.c.status == "running")).mappings().all()
        )
    stale = [
        row
        for row in running
        if (row["host"] == HOST and row["pid"] is not None and not process_alive(int(row["pid"])))
        or (row["heartbeat_at"] is not None and as_utc(row["heartbeat_at"]) < horizon)
    ]
    for row in stale:
        where = f"pid {row['pid']} on {row['host']}" if row["host"] else "its process"
        _finish(
            instance,
            _job(row),
            "failed",
            f"{where} ended before the job finished; `loopline batch job resume {row['id']}` continues it",
        )
    return len(stale)


def list_jobs(
    instance: Instance, endpoint: str | None = None, workspace: str | None = None, limit: int | None = None
) -> list[BatchJob]:
    """Batch jobs (of one endpoint, of one workspace), newest first (the newest ``limit`` when given)."""
    fail_stale(instance)
    statement = select(batch_jobs).order_by(batch_jobs.c.started_at.desc())
    if endpoint:
        statement = statement.where(batch_jobs.c.endpoint == endpoint)
    if workspace:
        statement = statement.where(batch_jobs.c.workspace == workspace)
    if limit is not None:
        statement = statement.limit(min(limit, 2**63 - 1))  # what a database's integer holds
    with instance.db.read() as connection:
        return [_job(row) for row in connection.execute(statement).mappings()]


def get_job(instance: Instance, job_id: str) -> BatchJob:
    """One batch job."""
    fail_stale(instance)
    with instance.db.read() as connection:
        row = connection.execute(select(batch_jobs).where(batch_jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFound(f"no batch job {job_id}; `loopline batch job list` shows them")
    return _job(row)


def _chunks(
    instance: Instance, asset: DataAsset, files: list[str], rows: int, texts: Collection[str] = ()
) -> Iterator[Any]:
    """The asset's rows as DataFrames of at most ``rows`` rows, file after file, in a fixed order (the
    columns ``texts`` read as text), with the columns of a partitioned folder's paths."""
    store = instance.datastore(asset.datastore)
    partitions = partition_values(asset)
    for name in files:
        for frame in store.frames(name, rows, texts):
            yield with_partitions(frame, partitions.get(name, {}), texts)


def _chunk_rows(instance: Instance, first: Any) -> int:
    """Rows per chunk: the configured number, fewer when that many (as large as the rows ``first``) would
    not fit the memory cap."""
    config = instance.settings.config.batch
    if first is None or first.empty:
        return config.chunk_rows
    per_row = max(1.0, first.memory_usage(deep=True).sum() / len(first))
    return max(1, min(config.chunk_rows, int(config.max_chunk_mb * 1024 * 1024 // per_row)))


def invoke(
    instance: Instance,
    endpoint: str,
    input_asset: str,
    input_version: int | None = None,
    deployment: str | None = None,
    reporter: Reporter | None = None,
    workspace: str | None = None,
    compute: str | None = None,
    keep: Sequence[str] = (),
) -> BatchJob:
    """Score a data asset with the endpoint's default (or a named) deployment, here or on the compute
    target ``compute`` (default: the deployment's, else ``compute.default``); its parts carry the input
    columns ``keep`` beside the answers."""
    instance.db.require_current(instance.root)
    info = get_batch_endpoint(instance, endpoint, workspace)
    chosen = info.deployment(deployment)
    if chosen is None:
        raise NotFound(
            f"batch endpoint '{endpoint}' has no deployment {deployment or '(no default yet)'}; "
            f"create one with `loopline batch-deployment create {endpoint} NAME --version N`"
        )
    refuse_withdrawn(instance.db, chosen, info.workspace)
    config = instance.settings.config.compute
    target = (
        resolve(config, compute) if compute else resolve(config, chosen.compute, f"deployment {chosen.name}")
    )
    asset = get_asset(instance, input_asset, input_version)
    files = verified_files(instance, asset)
    first = next(_chunks(instance, asset, files[:1], SAMPLE_ROWS), None)  # the first rows of the input
    _check_keep(asset, first, keep)
    job_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    with instance.db.write() as connection:
        connection.execute(
            insert(batch_jobs).values(
                id=job_id,
                workspace=info.workspace,
                endpoint=endpoint,
                deployment=chosen.name,
                **pinned(chosen),
                content_digest=chosen.content_digest,
                input_asset=asset.name,
                input_version=asset.version,
                input_digest=asset.digest,
                chunk_rows=_chunk_rows(instance, first),
                status="running",
                chunks_done=0,
                rows=0,
                output=f"predictions://{endpoint}/{job_id}",
                started_at=utcnow(),
                actor=instance.actor,
                host=HOST,
                pid=os.getpid(),
                heartbeat_at=utcnow(),
                compute=target.name if target else LOCAL,
                keep=json.dumps(list(keep)) if keep else None,
            )
        )
    job = get_job(instance, job_id)
    return _run(instance, job, chosen, asset, files, reporter or NullReporter(), target)


def _check_keep(asset: DataAsset, first: Any, keep: Sequence[str]) -> None:
    """Refuse columns to keep that the asset's first rows (``first``) lack, or that would clash in the
    parts."""
    if not keep:
        return
    twice = sorted(name for name, count in Counter(keep).items() if count > 1)
    if twice or "row" in keep:
        raise UsageError(
            f"--keep names '{(twice or ['row'])[0]}' "
            + ("twice" if twice else "(the parts number their rows in a column of that name)")
            + "; name each input column once, and not row"
        )
    columns = [str(column) for column in first.columns] if first is not None else []
    missing = [name for name in keep if name not in columns]
    if missing:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise UsageError(
            f"--keep names '{missing[0]}', which is not a column of data asset {asset.name}:{asset.version} "
            f"(its columns: {shown or 'none'})"
        )


def resume(
    instance: Instance, job_id: str, reporter: Reporter | None = None, compute: str | None = None
) -> BatchJob:
    """Finish a job that failed or was interrupted, reusing the parts it wrote (where it ran, unless
    ``compute`` names another target)."""
    job = get_job(instance, job_id)
    if job.status == "succeeded":
        return job
    if job.status == "running":
        raise Refused(
            f"batch job {job_id} is still running; wait for it, or resume it once "
            "`loopline batch job list` shows it failed"
        )
    info = get_batch_endpoint(instance, job.endpoint, job.workspace)
    chosen = next((d for d in info.deployments if d.name == job.deployment), None)
    if chosen is None or chosen.content_digest != _content_digest(instance, job_id):
        raise Refused(f"deployment {job.deployment} of '{job.endpoint}' is gone or changed; start a new job")
    config = instance.settings.config.compute
    target = resolve(config, compute) if compute else resolve(config, job.compute, f"batch job {job_id}")
    name, version = job.input.split(":")
    asset = get_asset(instance, name, int(version))
    files = verified_files(instance, asset)
    return _run(instance, job, chosen, asset, files, reporter or NullReporter(), target)


def _content_digest(instance: Instance, job_id: str) -> str:
    with instance.db.read() as connection:
        return str(
            connection.execute(select(batch_jobs.c.content_digest).where(batch_jobs.c.id == job_id)).scalar()
        )


def _run(
    instance: Instance,
    job: BatchJob,
    deployment: DeploymentInfo,
    asset: DataAsset,
    files: list[str],
    reporter: Reporter,
    target: RayTarget | None = None,
) -> BatchJob:
    started = time.monotonic()
    work = _Work(instance, job, deployment, asset, files, f"{job.endpoint}/{job.id}", reporter)
    folder = work.folder
    _alive(instance, job.id, claim=target.name if target else LOCAL)
    try:
        with Heartbeat(HEARTBEAT_SECONDS, lambda: _alive(instance, job.id)):
            rows, chunks, peak = _score_here(work) if target is None else _score_on_ray(target, work)
            if deployment.output_file:
                _write_output_file(work, deployment.output_file, chunks)
            lineage = {
                "job": job.id,
                "endpoint": job.endpoint,
                "deployment": deployment.name,
                **pinned(deployment),
                "content_digest": deployment.content_digest,
                "input": {
                    "asset": asset.name,
                    "version": asset.version,
                    "path": asset.reference,
                    "digest": asset.digest,
                },
                "rows": rows,
                "chunks": chunks,
                "chunk_rows": job.chunk_rows,
                "peak_chunk_mb": round(peak / 2**20, 2),
                "seconds": round(time.monotonic() - started, 3),
                "started_at": job.started_at,
                "compute": target.name if target else LOCAL,
                "kept_columns": list(job.keep),
                "parts": [part_name(folder, i).removeprefix(f"{folder}/") for i in range(chunks)],
                **({"output_file": deployment.output_file} if deployment.output_file else {}),
            }
            payload = json.dumps(lineage, indent=2).encode()
            instance.datastore("predictions").write_atomic(f"{folder}/{LINEAGE}", payload)
    except Exception as exc:
        _finish(instance, job, "failed", str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
        raise
    except KeyboardInterrupt:
        _finish(instance, job, "failed", "interrupted")
        raise
    _finish(instance, job, "succeeded", None, rows)
    return get_job(instance, job.id)


Scored = tuple[int, int, int]
"""Rows, chunks, and the largest chunk's size in memory (bytes)."""


@dataclass(frozen=True)
class _Work:
    """One run of a job: what it scores with, what it reads, where it writes, whom it tells."""

    instance: Instance
    job: BatchJob
    deployment: DeploymentInfo
    asset: DataAsset
    files: list[str]
    folder: str
    reporter: Reporter


def _model_source(work: _Work) -> str:
    """Where the deployment's model files are now (``store_holding``: the workspace's model store as
    configured, or the one its source names where that has moved), as MLflow names a version's source."""
    digest = work.deployment.content_digest
    store = work.instance.model_store(work.job.workspace)
    return store_holding(store, digest, work.deployment.source_uri).source(digest)


def _score_here(work: _Work) -> Scored:
    """Score the chunks one after another in this process (the model in a sandbox)."""
    predictions = work.instance.datastore("predictions")
    files = model_store_of(_model_source(work)).verify(work.deployment.content_digest)
    with SandboxedModel(files, work.instance.settings.config.sandbox) as model:
        rows, chunks, peak = 0, 0, 0
        texts = text_columns(model.folder, kept=work.job.keep)
        read = _chunks(work.instance, work.asset, work.files, work.job.chunk_rows, texts)
        for index, frame in enumerate(read):
            part = part_name(work.folder, index)
            peak = max(peak, int(frame.memory_usage(deep=True).sum()))
            if not predictions.exists(part):
                answers = model.score(frame, rows, work.job.keep)
                predictions.write_atomic(part, part_bytes(answers, rows, frame, work.job.keep))
                failpoints.hit("batch-after-chunk")
            rows += len(frame)
            chunks = index + 1
            _progress(work.instance, work.job.id, chunks, rows)
            work.reporter.step(f"chunk {chunks}: {rows:,} rows scored")
    return rows, chunks, peak


def _score_on_ray(target: RayTarget, work: _Work) -> Scored:
    """Score the chunks whose part is missing on the Ray cluster ``target``, recording each as it lands."""
    instance, job = work.instance, work.job
    inbox, predictions = instance.datastore(work.asset.datastore), instance.datastore("predictions")
    source = _model_source(work)
    here = inbox.local or predictions.local or not is_remote(source)
    if here and not target.on_this_machine:
        raise UsageError(
            f"compute target '{target.name}' is another machine, and the model's files or the datastores "
            "are folders on this one; put the model store and the datastores in an object store (az://, s3://)"
        )
    chunks = plan(inbox, work.files, job.chunk_rows)
    missing = [chunk for chunk in chunks if not predictions.exists(part_name(work.folder, chunk.index))]
    written = [chunk for chunk in chunks if chunk not in missing]
    done = {"chunks": len(written), "rows": sum(chunk.rows for chunk in written), "peak": 0}
    work.reporter.step(
        f"{len(missing)} of {len(chunks)} chunks to score on Ray cluster '{target.name}' "
        f"({min(target.settings.workers, max(1, len(missing)))} actors)"
    )

    def landed(index: int, rows: int, size: int) -> None:
        done["peak"] = max(done["peak"], size)
        done["chunks"] += 1
        done["rows"] += rows
        _progress(instance, job.id, done["chunks"], done["rows"])
        work.reporter.step(f"chunk {index + 1} ({done['chunks']} of {len(chunks)}): {done['rows']:,} rows")
        failpoints.hit("batch-after-chunk")

    score_on_ray(
        target,
        missing,
        source_uri=source,
        content_digest=work.deployment.content_digest,
        inbox=inbox,
        predictions=predictions,
        folder=work.folder,
        keep=job.keep,
        partitions=partition_values(work.asset),
        log_path=instance.logs_dir / f"batch-{job.id}.log",
        on_chunk=landed,
    )
    return sum(chunk.rows for chunk in chunks), len(chunks), done["peak"]


def _write_output_file(work: _Work, name: str, chunks: int) -> None:
    """The job's parts, in their order, as the one CSV file ``name`` of its folder (as Azure ML's
    ``append_row`` writes ``predictions.csv``): read a part at a time into a local file, then copied whole,
    so a job cut short leaves none or all of it. A list an answer holds is written as JSON."""
    import tempfile

    predictions = work.instance.datastore("predictions")
    with tempfile.TemporaryDirectory(prefix="loopline-output-") as scratch:
        local = os.path.join(scratch, name)
        with open(local, "w", newline="", encoding="utf-8") as out:
            for index in range(chunks):
                frame = predictions.frame(part_name(work.folder, index))
                for column in frame.select_dtypes(include="object").columns:
                    frame[column] = frame[column].map(_as_cell)
                frame.to_csv(out, index=False, header=index == 0)
        predictions.put_file(f"{work.folder}/{name}", local)
    work.reporter.step(f"predictions also in {name}")


def _as_cell(value: Any) -> Any:
    """A value of a part as a CSV cell: a list (an array) as JSON, anything else as it is."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    return json.dumps(value) if isinstance(value, list | dict) else value


def _progress(instance: Instance, job_id: str, chunks: int, rows: int) -> None:
    with instance.db.write() as connection:
        connection.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job_id)
            .values(chunks_done=chunks, rows=rows, heartbeat_at=utcnow())
        )


def _finish(
    instance: Instance, job: BatchJob, status: str, error: str | None, rows: int | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if rows is not None:
        values["rows"] = rows
    with instance.db.write() as connection:
        connection.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
        audit.append(
            connection,
            BatchJobFinished(
                actor=instance.actor,
                **pinned(job),
                source=job.input,
                target=job.output,
                outcome=status,
                reason=error,
                details={"job": job.id},
            ),
        )

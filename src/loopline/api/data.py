"""The SDK: data assets, batch endpoints and batch jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.api._common import PathLike, provisioned

if TYPE_CHECKING:
    from loopline.batch.jobs import BatchJob
    from loopline.batch.service import BatchEndpoint, DefaultChange
    from loopline.data import DataAsset, StagedData
    from loopline.progress import Reporter


def register_data(
    name: str, path: str, *, digest: str | None = None, project: PathLike | None = None
) -> tuple[DataAsset, bool]:
    """Pin the files at ``path`` (``inbox://folder/or/file``) as a version of data asset ``name``; with
    ``digest``, only if they are those bytes (what :func:`stage_data` copied there)."""
    from loopline.data import register_asset

    return register_asset(provisioned(project), name, path, digest=digest)


def stage_data(
    name: str, source: PathLike, *, overwrite: bool = False, project: PathLike | None = None
) -> StagedData:
    """Copy a file or folder of this machine into the inbox datastore, at a path named by its content
    (``inbox://NAME/<digest>/...``), for :func:`register_data` to pin (the files already there copied
    again with ``overwrite``); needs the datastore's credentials here, not loopline's database."""
    from pathlib import Path

    from loopline.data import stage_files
    from loopline.instance import Instance

    return stage_files(Instance.open(project).datastore("inbox"), name, Path(source), overwrite=overwrite)


def upload_data(
    name: str, source: PathLike, *, digest: str | None = None, project: PathLike | None = None
) -> tuple[DataAsset, bool]:
    """Copy a file or folder of this machine into the inbox datastore and pin it as a version of data
    asset ``name`` (the same bytes again: nothing copied, no new version); with ``digest``, only if they
    are those bytes. Through a control plane, the files travel to it and it copies them into the inbox."""
    from pathlib import Path

    from loopline.data import upload_asset

    return upload_asset(provisioned(project), name, Path(source), digest=digest)


def list_data(name: str | None = None, *, project: PathLike | None = None) -> list[DataAsset]:
    """Data asset versions (of ``name`` when given)."""
    from loopline.data import list_assets

    return list_assets(provisioned(project), name)


def get_data(name: str, version: int | None = None, *, project: PathLike | None = None) -> DataAsset:
    """One data asset version (default: the newest)."""
    from loopline.data import get_asset

    return get_asset(provisioned(project), name, version)


def create_batch_endpoint(
    name: str, workspace: str = "dev", *, project: PathLike | None = None
) -> BatchEndpoint:
    """Create a batch endpoint in a workspace."""
    from loopline.batch import service

    return service.create_batch_endpoint(provisioned(project), name, workspace)


def list_batch_endpoints(*, project: PathLike | None = None) -> list[BatchEndpoint]:
    """Every batch endpoint."""
    from loopline.batch import service

    return service.list_batch_endpoints(provisioned(project))


def get_batch_endpoint(
    name: str, *, workspace: str | None = None, project: PathLike | None = None
) -> BatchEndpoint:
    """One batch endpoint with its deployments and default (``workspace`` where the name is in several)."""
    from loopline.batch import service

    return service.get_batch_endpoint(provisioned(project), name, workspace)


def create_batch_deployment(
    endpoint: str,
    name: str,
    *,
    workspace: str | None = None,
    model: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    compute: str | None = None,
    latest: bool = False,
    output_file: str | None = None,
    project: PathLike | None = None,
) -> BatchEndpoint:
    """Deploy a model version (by ``version`` or ``commit``, or with ``latest`` the newest in the endpoint's
    workspace, as an Azure ML file's ``azureml:NAME@latest``) to a batch endpoint (the first becomes the
    default); its jobs run on the ``compute`` target (default ``compute.default``) and, with
    ``output_file``, also write their predictions as one CSV file of that name (as Azure ML's
    ``append_row`` writes ``predictions.csv``)."""
    from loopline.batch import service

    instance = provisioned(project)
    return service.create_batch_deployment(
        instance,
        endpoint,
        name,
        instance.model_name(model),
        version=version,
        commit=commit,
        workspace=workspace,
        compute=compute,
        latest=latest,
        output_file=output_file,
    )


def batch_invoke(
    endpoint: str,
    data: str,
    *,
    workspace: str | None = None,
    deployment: str | None = None,
    compute: str | None = None,
    keep: list[str] | None = None,
    project: PathLike | None = None,
    reporter: Reporter | None = None,
) -> BatchJob:
    """Score a data asset (``NAME`` or ``NAME:VERSION``) with a batch endpoint, on the ``compute`` target
    (default: the deployment's, else ``compute.default``); the predictions carry the input columns
    ``keep`` (an ID to join them back by, say) beside the answers."""
    from loopline.batch import jobs
    from loopline.data import parse_asset

    name, version = parse_asset(data)
    instance = provisioned(project)
    return jobs.invoke(
        instance, endpoint, name, version, deployment, reporter, workspace, compute, tuple(keep or ())
    )


def batch_resume(
    job_id: str,
    *,
    compute: str | None = None,
    project: PathLike | None = None,
    reporter: Reporter | None = None,
) -> BatchJob:
    """Finish a batch job that failed or was interrupted (where it ran, unless ``compute`` says)."""
    from loopline.batch import jobs

    return jobs.resume(provisioned(project), job_id, reporter, compute)


def batch_jobs(
    endpoint: str | None = None,
    *,
    workspace: str | None = None,
    limit: int | None = None,
    project: PathLike | None = None,
) -> list[BatchJob]:
    """Batch jobs (of one endpoint, of one workspace), newest first (the newest ``limit`` when given)."""
    from loopline.batch import jobs
    from loopline.errors import UsageError

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    return jobs.list_jobs(provisioned(project), endpoint, workspace, limit)


def batch_job(job_id: str, *, project: PathLike | None = None) -> BatchJob:
    """One batch job."""
    from loopline.batch import jobs

    return jobs.get_job(provisioned(project), job_id)


def batch_promote(
    endpoint: str,
    deployment: str,
    *,
    workspace: str | None = None,
    expected_current: str | None = None,
    reason: str | None = None,
    breaking_change: str | None = None,
    project: PathLike | None = None,
) -> DefaultChange:
    """Make a deployment the batch endpoint's default, refusing when the default is not the expected one;
    ``reason`` goes into the audit log. A deployment whose answers would break what reads the default's
    predictions (another form, labels renamed) is refused unless ``breaking_change`` says why."""
    from loopline.loops.batch_promote import promote

    instance = provisioned(project)
    return promote(instance, endpoint, deployment, expected_current, workspace, reason, breaking_change)


def batch_rollback(
    endpoint: str, *, workspace: str | None = None, project: PathLike | None = None
) -> DefaultChange:
    """Restore a batch endpoint's previous default."""
    from loopline.batch import service

    return service.rollback(provisioned(project), endpoint, workspace)

"""Operations the caller runs around the control plane's: they write the caller's files, or point the
caller's own process, from what the control plane answers (``composed`` in the operation table).

- ``report_experiment``: dev's runs are read there (``experiment_data``), the report is written and
  posted here, as the caller's own GitHub Actions job.
- ``sweep``: the trials train here, and the best one's run is uploaded as the remote inner loop's is.
- ``use_workspace``: points this process's MLflow at a workspace's store with this machine's credentials
  for it, which loopline's database is not needed for; dev's store, when this machine does not reach it,
  through the control plane's MLflow tracking (``/mlflow/dev``) with the caller's token; test's or prod's
  through the control plane's registry URI for it (``/mlflow/prod``: read its registry and load its
  models, log nothing), with what to do to log there said when the token is no reader of it. No store is
  made anew here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import StoreUnavailable

if TYPE_CHECKING:
    from loopline.api.results import WorkspaceInfo
    from loopline.loops.experiments import ExperimentReport
    from loopline.loops.sweep import SweepResult
    from loopline.remote.client import Client

__all__ = ["remote_report_experiment", "remote_sweep", "remote_use_workspace"]


def remote_report_experiment(client: Client, arguments: dict[str, Any]) -> ExperimentReport:
    """``report_experiment`` for a caller that reaches neither dev's store nor loopline's database."""
    from loopline import api
    from loopline.config import find_project_root
    from loopline.loops.experiments import publish, report_folder, write_report

    data = client.call(api.experiment_data, last=arguments.get("last", 20))
    out = arguments.get("out")
    folder = Path(out) if out else report_folder(find_project_root(arguments.get("project")))
    return publish(write_report(data, folder), bool(arguments.get("comment")), arguments.get("pull_request"))


_INSTEAD = (
    "`loopline inner-loop` trains here and uploads the run through the control plane; to log from this "
    "process, set the workspace's tracking_uri (LOOPLINE_WORKSPACES__{W}__TRACKING_URI) to its store with "
    "credentials for it (dev's tracking needs none: `loopline.use_workspace('dev')`)"
)


def remote_use_workspace(client: Client, arguments: dict[str, Any]) -> WorkspaceInfo:
    """``use_workspace`` for a caller of a control plane: the workspace's store as this machine reaches it,
    or, for dev, MLflow's tracking through the control plane with the caller's token."""
    import mlflow

    from loopline.api.results import WorkspaceInfo
    from loopline.instance import Instance

    workspace = arguments.get("workspace") or "dev"
    instance = Instance.open(arguments.get("project"))
    instance.require_workspace(workspace)
    location = instance.settings.store(workspace)
    experiment = instance.settings.experiment
    try:
        _reached_here(client, instance, workspace)
    except StoreUnavailable as unreached:
        if workspace != "dev":
            return _registry_through(client, workspace, unreached)
        return _tracked_through(client, experiment)
    mlflow.set_tracking_uri(location.tracking_uri)
    mlflow.set_registry_uri(location.registry_uri)
    mlflow.set_experiment(experiment)
    return WorkspaceInfo(workspace, location.tracking_uri, location.registry_uri, experiment)


def _reached_here(client: Client, instance: Any, workspace: str) -> None:
    """Refuse a workspace whose store this machine does not reach (none is made anew here)."""
    from sqlalchemy.engine import make_url

    from loopline.errors import LooplineError

    location = instance.settings.store(workspace)
    instead = _INSTEAD.replace("{W}", workspace.upper())
    for uri in {location.tracking_uri, location.registry_uri}:
        if uri.startswith("sqlite:") and not Path(make_url(uri).database or "").is_file():
            raise StoreUnavailable(
                what=f"{workspace}'s MLflow store",
                where=uri,
                reason=f"it is a file of the control plane's host ({client.url}), not of this machine; "
                + instead,
            )
    try:
        instance.store(workspace).experiment_id(instance.settings.experiment)
    except LooplineError as error:
        raise StoreUnavailable(
            what=f"{workspace}'s MLflow store",
            where=location.tracking_uri,
            reason=f"{error.message}; {instead}",
        ) from None


def _tracked_through(client: Client, experiment: str) -> WorkspaceInfo:
    """Point this process's MLflow at dev's tracking on the control plane (``/mlflow/dev``), signed in
    with the caller's loopline token (``MLFLOW_TRACKING_TOKEN``, as MLflow's clients send one)."""
    import os

    import mlflow
    from mlflow.exceptions import MlflowException

    from loopline.api.results import WorkspaceInfo

    uri = f"{client.url}/mlflow/dev"
    os.environ["MLFLOW_TRACKING_TOKEN"] = client.token
    try:
        mlflow.MlflowClient(uri, uri).get_experiment_by_name(experiment)
    except MlflowException as exc:
        reason = str(exc.message).splitlines()[0][:300]
        raise StoreUnavailable(
            what="dev's MLflow tracking on the control plane", where=uri, reason=reason
        ) from None
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment)
    return WorkspaceInfo("dev", uri, uri, experiment)


def _registry_through(client: Client, workspace: str, unreached: StoreUnavailable) -> WorkspaceInfo:
    """Point this process's MLflow at test's or prod's registry on the control plane (``/mlflow/prod``),
    read-only, signed in with the caller's token; ``unreached`` (why the store itself is not reached
    here) where the token is no reader of it."""
    import os

    import mlflow
    from mlflow.exceptions import MlflowException

    from loopline.api.results import WorkspaceInfo

    uri = f"{client.url}/mlflow/{workspace}"
    os.environ["MLFLOW_TRACKING_TOKEN"] = client.token
    try:
        mlflow.MlflowClient(uri, uri).search_registered_models(max_results=1)
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":
            raise unreached from None
        reason = str(exc.message).splitlines()[0][:300]
        raise StoreUnavailable(
            what=f"{workspace}'s registry on the control plane", where=uri, reason=reason
        ) from None
    mlflow.set_tracking_uri(uri)  # the versions' files are read through it
    mlflow.set_registry_uri(uri)
    return WorkspaceInfo(workspace, uri, uri, "")


def remote_sweep(client: Client, arguments: dict[str, Any]) -> SweepResult:
    """Run the commit's sweep here into a scratch store (kept until it ends, so a killed sweep goes on
    where it stopped), then upload the best trial's run and have the control plane register it."""
    from loopline.instance import Instance
    from loopline.loops.sweep import plan_sweep, put_back
    from loopline.progress import NullReporter
    from loopline.remote.data import RemoteAssets
    from loopline.remote.upload import begin, scratch, upload_run

    instance = Instance.open(arguments.get("project"))
    report = arguments.get("reporter") or NullReporter()
    put_back(instance, report)
    identity, done = begin(client, arguments, instance)
    options = {key: arguments.get(key) for key in ("trials", "parallel", "model", "compute")}
    result, trainer = plan_sweep(instance, identity, **options, assets=RemoteAssets(client))
    if done is not None:
        report.step(f"commit {identity.commit[:7]} is already registered; the sweep ran no trial")
        result.inner_loop = done
        return result
    folder = instance.settings.state_dir / "scratch-sweeps" / result.study
    store = scratch(instance, folder, fresh=False)
    made = trainer(instance, identity, report)
    result.inner_loop = upload_run(client, instance, identity, store, made, arguments, report)
    shutil.rmtree(folder, ignore_errors=True)
    return result

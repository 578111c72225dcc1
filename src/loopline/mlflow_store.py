"""One workspace's MLflow tracking store and model registry (MLflow is imported only in here, lazily)."""

from __future__ import annotations

import logging
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import StoreLocation
from loopline.domain import PRODUCTION
from loopline.errors import NotFound, Refused, StoreUnavailable
from loopline.metric_names import mlflow_keys
from loopline.mlflow_output import no_progress_bars, quiet_mlflow
from loopline.mlflow_reach import reach
from loopline.mlflow_sqlite import copy_template
from loopline.storage.fs import cache_dir, local_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "LoggedModelInfo",
    "RunInfo",
    "VersionInfo",
    "WorkspaceStore",
    "artifact_root_uri",
    "cache_dir",
]

_log = logging.getLogger("loopline.mlflow_store")
_BATCH = 1000  # metrics a call to MLflow's log_batch may hold


@dataclass(frozen=True)
class RunInfo:
    """What the inner loop needs to know of one MLflow run."""

    run_id: str
    status: str
    metrics: dict[str, float]
    tags: dict[str, str]
    params: dict[str, str]
    experiment_id: str = ""
    artifact_uri: str = ""
    start_time: int = 0

    @property
    def parent_id(self) -> str | None:
        """The run this one is nested in, if any."""
        return self.tags.get("mlflow.parentRunId") or None


@dataclass(frozen=True)
class LoggedModelInfo:
    """A model a run logged: MLflow 3's logged model, or a folder with an MLmodel among its artifacts."""

    name: str
    run_id: str
    uri: str
    model_id: str | None
    created: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class VersionInfo:
    """One MLflow model version."""

    name: str
    version: int
    source: str
    run_id: str | None
    tags: dict[str, str]
    aliases: tuple[str, ...]


class WorkspaceStore:
    """The MLflow side of one workspace or of the shared registry."""

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self._client: MlflowClient | None = None

    @classmethod
    def scratch(cls, folder: Path, name: str = "dev") -> WorkspaceStore:
        """A throwaway store in ``folder`` (SQLite and a folder of artifacts), standing in for ``name``."""
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        return cls(StoreLocation(name, uri, uri, str(folder / "artifacts"), str(folder / "models")))

    @property
    def name(self) -> str:
        """The workspace's name."""
        return self.location.name

    @property
    def client(self) -> MlflowClient:
        """A stock MLflow client bound to this workspace's tracking store and registry."""
        if self._client is None:
            quiet_mlflow()
            from mlflow import MlflowClient

            tracking, registry = reach(self.location)
            self._client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
        return self._client

    def sqlite_file(self) -> Path | None:
        """The SQLite database of a store that is one on this machine (None for any other)."""
        uri = self.location.tracking_uri
        return Path(uri.removeprefix("sqlite:///")) if self.location.is_local_sqlite else None

    def errors(self) -> AbstractContextManager[None]:
        """Within: MLflow's connection failures are raised as StoreUnavailable naming this workspace."""
        return _store_errors(self)

    def exists(self) -> bool:
        """True when the store has been created (always assumed for remote stores)."""
        path = self.sqlite_file()
        return path is None or path.exists()

    def provision(self, experiment: str | None) -> list[str]:
        """Create the store and ``experiment`` when missing; return what was created."""
        from loopline.config import redact
        from loopline.state import ensure_database

        created = []
        path = self.sqlite_file()
        artifacts = self.location.artifact_location
        if path is not None and not path.exists():
            assert artifacts is not None  # a SQLite store is never a tracking server's
            copy_template(path, _artifact_uri(artifacts, "0"))
            created.append(f"MLflow store {self.location.tracking_uri}")
        for uri in dict.fromkeys((self.location.tracking_uri, self.location.registry_uri)):
            if uri.startswith("postgresql") and ensure_database(uri):
                created.append(f"database {redact(uri)}")
        if experiment and self._experiment(experiment) is None:
            self.client.create_experiment(  # a tracking server's own artifact root when none is set
                experiment, artifact_location=artifacts and _artifact_uri(artifacts, experiment)
            )
            created.append(f"experiment '{experiment}' in {self.name}")
        return created

    def _experiment(self, name: str) -> Any:
        with _store_errors(self):
            return self.client.get_experiment_by_name(name)

    def experiment_id(self, name: str) -> str:
        """The ID of experiment ``name``; refuse when it does not exist."""
        experiment = self._experiment(name)
        if experiment is None:
            raise NotFound(f"experiment '{name}' does not exist in {self.name}; run `loopline up`")
        return str(experiment.experiment_id)

    def ensure_experiment(self, name: str) -> None:
        """Create experiment ``name`` where it does not exist (its artifacts where the workspace keeps
        them); refuse one that was deleted."""
        experiment = self._experiment(name)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise Refused(
                f"experiment '{name}' is deleted in {self.name}; restore it (`mlflow experiments restore`) "
                "or log the run to another experiment"
            )
        if experiment is None:
            self.provision(name)

    def create_run(self, experiment: str, tags: dict[str, str], run_name: str | None = None) -> str:
        """Start a run in ``experiment``; return its ID."""
        with _store_errors(self):
            run = self.client.create_run(self.experiment_id(experiment), tags=tags, run_name=run_name)
        return str(run.info.run_id)

    def end_run(self, run_id: str, status: str) -> None:
        """Mark a run FINISHED, FAILED or KILLED."""
        with _store_errors(self):
            self.client.set_terminated(run_id, status=status)

    def import_run(
        self,
        run_id: str,
        run: RunInfo,
        artifacts: Path | None,
        model_dir: Path,
        model_name: str,
    ) -> LoggedModelInfo:
        """Fill a started run with a run made elsewhere: params, metrics, artifacts and its logged model."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        with _store_errors(self):
            client = self.client
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in run.metrics.items()],
                params=[Param(k, str(v)) for k, v in run.params.items()],
            )
            if artifacts is not None and any(artifacts.iterdir()):
                client.log_artifacts(run_id, str(artifacts))
            experiment_id = client.get_run(run_id).info.experiment_id
            logged = client.create_logged_model(experiment_id, name=model_name, source_run_id=run_id)
            client.log_model_artifacts(logged.model_id, str(model_dir))
            client.finalize_logged_model(logged.model_id, "READY")
            client.set_terminated(run_id, status="FINISHED")
            location = str(client.get_logged_model(logged.model_id).artifact_location)
        return LoggedModelInfo(model_name, run_id, location, str(logged.model_id), now, {})

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Set one tag on a run."""
        with _store_errors(self):
            self.client.set_tag(run_id, key, value)

    def run(self, run_id: str) -> RunInfo:
        """One run's status, metrics, params and tags."""
        with _store_errors(self):
            run = self.client.get_run(run_id)
        return _run(run)

    def find_runs(self, experiment: str, filter_string: str) -> list[RunInfo]:
        """Runs of ``experiment`` matching an MLflow filter, newest first."""
        with _store_errors(self):
            runs = self.client.search_runs(
                [self.experiment_id(experiment)],
                filter_string=filter_string,
                order_by=["attributes.start_time DESC"],
                max_results=50,
            )
        return [_run(r) for r in runs]

    def search_all_runs(self, filter_string: str, limit: int = 1000) -> list[RunInfo]:
        """Runs of every active experiment matching an MLflow filter, newest first."""
        with _store_errors(self):
            experiments = [e.experiment_id for e in self.client.search_experiments(max_results=50_000)]
            if not experiments:
                return []
            runs = self.client.search_runs(
                experiments,
                filter_string=filter_string,
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            )
        return [_run(r) for r in runs]

    def experiment_name(self, experiment_id: str) -> str:
        """The name of the experiment with ``experiment_id``."""
        with _store_errors(self):
            return str(self.client.get_experiment(experiment_id).name)

    def logged_models(self, run: RunInfo) -> list[LoggedModelInfo]:
        """The models ``run`` logged and finished (MLflow 3 logged models), oldest first.

        A run that logged no such model but saved one as plain artifacts (a folder holding an ``MLmodel``,
        as MLflow 2 era scripts do with ``save_model`` and ``log_artifacts``) gets those folders instead.
        """
        with _store_errors(self):
            models = self.client.search_logged_models(
                experiment_ids=[run.experiment_id],
                filter_string=f"source_run_id = '{run.run_id}'",
                max_results=1000,
            )
            found = [
                LoggedModelInfo(
                    name=str(m.name),
                    run_id=run.run_id,
                    uri=str(m.artifact_location),
                    model_id=str(m.model_id),
                    created=int(m.creation_timestamp or 0),
                    metrics=self._model_metrics(run, m),
                )
                for m in models
                if str(getattr(m.status, "name", m.status)).upper().endswith("READY")
            ]
            if found:
                return sorted(found, key=lambda m: m.created)
            return self._artifact_models(run)

    def _model_metrics(self, run: RunInfo, model: Any) -> dict[str, float]:
        """The metrics MLflow linked to ``model``, as they stood when the run logged it.

        ``log_model`` links the run's metrics at its ``step`` argument, which is 0 unless given: a training
        that logs a metric at every epoch and then its model gets the first epoch's values linked. Where a
        metric was linked at step 0 and the run had logged later steps of it by the time the model was
        made, the model's value is the latest of those (what the run's page shows); a model logged with a
        checkpoint's step (``log_model(..., step=epoch)``) keeps that step's values.
        """
        linked = {metric.key: metric for metric in model.metrics or []}
        values = {key: float(metric.value) for key, metric in linked.items()}
        made = int(model.creation_timestamp or 0)
        for metric in linked.values():
            if metric.step != 0 or metric.run_id != run.run_id or run.metrics.get(metric.key) == metric.value:
                continue
            before = [
                entry
                for entry in self.client.get_metric_history(run.run_id, metric.key)
                if getattr(entry, "model_id", None) is None and entry.timestamp <= made
            ]
            if before:
                values[metric.key] = float(max(before, key=lambda e: (e.step, e.timestamp)).value)
        return values

    def _artifact_models(self, run: RunInfo) -> list[LoggedModelInfo]:
        found = []
        for entry in self.client.list_artifacts(run.run_id):
            if entry.is_dir and any(
                child.path.rsplit("/", 1)[-1] == "MLmodel"
                for child in self.client.list_artifacts(run.run_id, entry.path)
            ):
                uri = f"{run.artifact_uri.rstrip('/')}/{entry.path}"
                found.append(LoggedModelInfo(entry.path, run.run_id, uri, None, run.start_time, {}))
        return found

    def local_copy(self, artifact_uri: str, scratch: Path) -> Path:
        """A local folder with the artifacts at ``artifact_uri``: the folder itself when it is local."""
        scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", artifact_uri)  # mlflow-artifacts:/1/... has no //
        if scheme is None or scheme.group(1).lower() == "file":
            return local_path(artifact_uri)
        from mlflow.artifacts import download_artifacts

        with _store_errors(self), no_progress_bars():  # mlflow-artifacts:/ URIs: relative to the server
            return Path(
                download_artifacts(
                    artifact_uri=artifact_uri, dst_path=str(scratch), tracking_uri=self.location.tracking_uri
                )
            )

    def run_artifact(self, run_id: str, path: str, scratch: Path) -> Path:
        """The artifact ``path`` of run ``run_id``, downloaded into ``scratch``."""
        with no_progress_bars():
            return Path(self.client.download_artifacts(run_id, path, str(scratch)))

    def write_artifacts(self, relative: str, files: dict[str, str]) -> str:
        """Write text files under ``relative`` in this store's artifact location (on a tracking server
        without one, under its default experiment's); the folder's URI."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with tempfile.TemporaryDirectory() as scratch, _store_errors(self):
            if self.location.artifact_location is None:
                root = f"{str(self.client.get_experiment('0').artifact_location).rstrip('/')}/loopline"
            else:
                root = _location_uri(self.location.artifact_location)
            target = f"{root}/{relative.strip('/')}"
            for name, text in files.items():
                (Path(scratch) / name).write_text(text)
            repository = get_artifact_repository(target, tracking_uri=self.location.tracking_uri)
            repository.log_artifacts(scratch)  # type: ignore[no-untyped-call]
        return target

    def read_text(self, uri: str) -> str:
        """The text of one artifact file at ``uri`` (one this store wrote, e.g. a validation report)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        folder, _, name = uri.rpartition("/")
        with tempfile.TemporaryDirectory() as scratch, _store_errors(self), no_progress_bars():
            path = get_artifact_repository(folder).download_artifacts(name, scratch)  # type: ignore[no-untyped-call]
            return Path(path).read_text()

    def versions(self, name: str, filter_tags: dict[str, str]) -> list[VersionInfo]:
        """Versions of registered model ``name`` whose tags equal ``filter_tags``."""
        clauses = [f"name = '{name}'"] + [f"tags.{key} = '{value}'" for key, value in filter_tags.items()]
        with _store_errors(self):
            found = self.client.search_model_versions(" AND ".join(clauses))
        return sorted((_version(v) for v in found), key=lambda v: v.version)

    def versions_of_run(self, run_id: str) -> list[VersionInfo]:
        """Every registered version made from run ``run_id``, of any name (a training script may register
        its model itself)."""
        with _store_errors(self):
            found = self.client.search_model_versions(f"run_id = '{run_id}'")
        return sorted((_version(v) for v in found), key=lambda v: (v.name, v.version))

    def version(self, name: str, number: int) -> VersionInfo | None:
        """Version ``number`` of registered model ``name``; None where there is none (never made, deleted)."""
        from mlflow.exceptions import MlflowException

        with _store_errors(self):
            try:
                return _version(self.client.get_model_version(name, str(number)))
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        return None

    def create_version(
        self,
        name: str,
        source: str,
        tags: dict[str, str],
        run_id: str | None = None,
        model_id: str | None = None,
    ) -> int:
        """Register a version with all its tags in one step, so it is never visible half-tagged."""
        from mlflow.exceptions import MlflowException

        with _store_errors(self):
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            version = self.client.create_model_version(
                name, source, run_id=run_id, tags=tags, model_id=model_id
            )
        return int(version.version)

    def log_run(self, experiment: str, run_name: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
        """A finished run with metrics and tags in ``experiment``; its ID. A metric named after a column
        (``psi_Price (€)``) is logged under a key MLflow takes (``mlflow_keys``)."""
        from mlflow.entities import Metric

        keys, now = mlflow_keys(list(metrics)), int(time.time() * 1000)
        logged = [Metric(keys[name], value, now, 0) for name, value in metrics.items()]
        run_id = self.create_run(experiment, tags, run_name=run_name)
        with _store_errors(self):
            self.log_metrics(run_id, logged)
            self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def log_metrics(self, run_id: str, metrics: list[Any]) -> None:
        """MLflow ``Metric`` points logged to the run, as many to a call as MLflow takes."""
        for start in range(0, len(metrics), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point a registered model's alias at a version. The ``production`` alias also moves MLflow's stage
        of that name (the others in it archived), which MLflow deprecates but still serves: clients
        written before aliases load ``models:/NAME/Production``."""
        with _store_errors(self):
            self.client.set_registered_model_alias(name, alias, str(version))
            if alias == PRODUCTION:
                self._stage_production(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Take ``alias`` off a registered model (nothing where it has none); ``production`` also archives
        the versions in MLflow's stage of that name."""
        from mlflow.exceptions import MlflowException

        with _store_errors(self):
            try:
                self.client.delete_registered_model_alias(name, alias)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            if alias != PRODUCTION:
                return
            for staged in self.client.search_model_versions(f"name = '{name}'"):
                if staged.current_stage == "Production":
                    self._move_stage(name, int(staged.version), "Archived")

    def _stage_production(self, name: str, version: int) -> None:
        """Move MLflow's Production stage to ``version`` (the others in it archived)."""
        self._move_stage(name, version, "Production", archive_existing_versions=True)

    def _move_stage(
        self, name: str, version: int, stage: str, archive_existing_versions: bool = False
    ) -> None:
        """Best effort: a registry without stages (one that refuses them) keeps the aliases alone, and the
        log says so; the alias has already moved, and traffic with it."""
        from mlflow.exceptions import MlflowException

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                # The version as an int: MLflow compares the column with it as given, and PostgreSQL
                # refuses an integer column against a string (nothing in Production, silently).
                self.client.transition_model_version_stage(
                    name, version, stage, archive_existing_versions=archive_existing_versions
                )
        except MlflowException as exc:
            _log.warning("%s keeps no MLflow stages (%s): only the production alias moved", self.name, exc)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set one tag on a model version. MLflow's SQL stores look the tag up and then insert it, so of
        two writers setting a new tag at once one fails on the table's unique key: it sets it again, and
        finds the tag this time."""
        from mlflow.exceptions import MlflowException

        with _store_errors(self):
            for attempt in range(3):
                try:
                    self.client.set_model_version_tag(name, str(version), key, value)
                    return
                except MlflowException as exc:
                    if attempt == 2 or not _lost_insert_race(exc):
                        raise

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        """Take one tag off a model version (nothing where it has none)."""
        from mlflow.exceptions import MlflowException

        with _store_errors(self):
            try:
                self.client.delete_model_version_tag(name, str(version), key)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise


def _run(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        status=run.info.status,
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        experiment_id=str(run.info.experiment_id),
        artifact_uri=str(run.info.artifact_uri or ""),
        start_time=int(run.info.start_time or 0),
    )


def _version(version: Any) -> VersionInfo:
    return VersionInfo(
        name=version.name,
        version=int(version.version),
        source=version.source,
        run_id=version.run_id or None,
        tags=dict(version.tags),
        aliases=tuple(getattr(version, "aliases", ()) or ()),
    )


# The module MLflow's artifact repository of each scheme imports, and the package that brings it.
def artifact_root_uri(location: str) -> str:
    """A workspace's artifact location as a URI (a local folder as ``file://``)."""
    return location.rstrip("/") if "://" in location else Path(location).resolve().as_uri()


_location_uri = artifact_root_uri


def _artifact_uri(location: str, experiment: str) -> str:
    return f"{_location_uri(location)}/{experiment}"


def _lost_insert_race(exc: Exception) -> bool:
    """Whether MLflow failed on a unique key that another writer's insert took a moment before: SQLite's
    and PostgreSQL's words for it (a tracking server passes the database's message on)."""
    import sqlalchemy.exc

    said = str(exc)
    return isinstance(exc.__context__, sqlalchemy.exc.IntegrityError) or any(
        words in said for words in ("UNIQUE constraint failed", "duplicate key value violates unique")
    )


@contextmanager
def _store_errors(store: WorkspaceStore) -> Iterator[None]:
    """Turn MLflow's connection failures into StoreUnavailable naming the workspace."""
    try:
        yield
    except Exception as exc:
        name = type(exc).__name__
        if name in {"OperationalError", "ConnectError", "ConnectionError", "MaxRetryError"} or (
            name == "MlflowException" and "API request" in str(exc)
        ):
            from loopline.config import redact

            raise StoreUnavailable(
                what=f"the MLflow store of {store.name}",
                where=redact(store.location.tracking_uri),
                reason=str(exc).splitlines()[0][:200],
            ) from None
        raise

"""What MLflow shows of a run beyond its last values, carried from one store to another: every logged step
of each metric (the run page's charts), the datasets it logged as inputs, its name and its experiment,
and the other runs of the same training (a sweep's parent run and its trials, a search's child runs).

The remote inner loop and sweep train into a scratch store on the caller's machine and pack this record
beside the run's files; the control plane writes it into the dev runs it makes, so the runs read in dev as
runs trained there do. The record comes from the caller: it is checked here, bounded, and describes the
runs only (the gate, the commit and the author are never read from it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.errors import UsageError, shorten

if TYPE_CHECKING:
    from loopline.mlflow_store import WorkspaceStore

__all__ = [
    "DATA_ASSET_SOURCE",
    "DESCRIPTION_TAG",
    "HISTORY_POINTS",
    "RecordedDataset",
    "RecordedModel",
    "RelatedRun",
    "RunRecord",
    "own_tags",
    "read_record",
    "write_model",
    "write_record",
    "write_related",
]

DATA_ASSET_SOURCE = "loopline-data-asset"
"""The source type of the MLflow datasets loopline logs for a training's data asset versions: the control
plane logs those itself, from the versions it holds, and an upload cannot claim one."""
DESCRIPTION_TAG = "mlflow.note.content"
"""MLflow's tag for a run's description: the one tag of MLflow's own that a copy of a run keeps."""
HISTORY_POINTS = 1_000_000
"""The most metric values one record carries (a value a step, for every metric of every run together)."""
RELATED_RUNS = 1000
"""The most other runs one record carries."""

_Name = Annotated[str, Field(min_length=1, max_length=250)]
_Id = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
History = dict[_Name, list[tuple[float, int, int]]]
"""Each metric's (value, timestamp in ms, step), in logged order."""


def own_tags(tags: dict[str, str]) -> dict[str, str]:
    """A run's tags as a copy of it keeps them: of MLflow's own, only the description (``mlflow.user``,
    the source's commit or a parent run would name someone or something else where it is copied to)."""
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.") or k == DESCRIPTION_TAG}


class RecordedDataset(BaseModel):
    """A dataset a run logged as an input (``mlflow.log_input``), as MLflow stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(max_length=500)
    digest: str = Field(max_length=36)
    source_type: str = Field(max_length=36)
    source: str = Field(max_length=65_535)
    data_schema: str | None = Field(default=None, max_length=1 << 20)
    profile: str | None = Field(default=None, max_length=1 << 20)
    context: str | None = Field(default=None, max_length=250)

    @field_validator("source_type")
    @classmethod
    def _not_a_data_asset(cls, value: str) -> str:
        if value == DATA_ASSET_SOURCE:
            raise ValueError(
                "a data asset version is claimed by the run's tag loopline.training_inputs, not as a dataset"
            )
        return value


class RecordedModel(BaseModel):
    """What MLflow 3 keeps of the run's logged model beside its files: its params, tags and the metrics
    linked to it (the experiment's Models page shows them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[_Name, Annotated[str, Field(max_length=8000)]] = Field(default_factory=dict)
    tags: dict[_Name, Annotated[str, Field(max_length=8000)]] = Field(default_factory=dict)
    metrics: list[tuple[_Name, float, int, int]] = Field(
        default_factory=list, max_length=100_000, description="(key, value, timestamp in ms, step)"
    )


class RelatedRun(BaseModel):
    """Another run of the same training, without files: a sweep's parent run or one of its trials, a child
    run of a search by hand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _Id = Field(description="its ID where it was trained, only to link runs to their parent")
    parent: _Id | None = None
    name: str | None = Field(default=None, max_length=250)
    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    params: dict[_Name, Annotated[str, Field(max_length=8000)]] = Field(default_factory=dict)
    tags: dict[_Name, Annotated[str, Field(max_length=8000)]] = Field(default_factory=dict)
    history: History = Field(default_factory=dict)
    datasets: list[RecordedDataset] = Field(default_factory=list, max_length=100)


class RunRecord(BaseModel):
    """A run's name, experiment, metric history, datasets and related runs (see the module's doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _Id | None = Field(default=None, description="its ID where it was trained")
    parent: _Id | None = Field(default=None, description="the related run it is nested in")
    name: str | None = Field(default=None, max_length=250)
    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    history: History = Field(default_factory=dict)
    datasets: list[RecordedDataset] = Field(default_factory=list, max_length=1000)
    model: RecordedModel | None = None
    related: list[RelatedRun] = Field(
        default_factory=list, max_length=RELATED_RUNS, description="parents before their children"
    )

    @model_validator(mode="after")
    def _bounded_and_linked(self) -> RunRecord:
        histories = [self.history, *(run.history for run in self.related)]
        if sum(len(points) for history in histories for points in history.values()) > HISTORY_POINTS:
            raise ValueError(f"more than {HISTORY_POINTS} metric values")
        known = {self.id} if self.id else set()
        for run in self.related:
            if run.parent is not None and run.parent not in known:
                raise ValueError(f"related run {run.id} names parent {run.parent}, which is not before it")
            if run.id in known:
                raise ValueError(f"related run {run.id} is there twice")
            known.add(run.id)
        if self.parent is not None and self.parent not in known - {self.id}:
            raise ValueError(f"the run names parent {self.parent}, which is not one of the related runs")
        return self

    def to_json(self) -> str:
        """The record as JSON (NaN and infinite values as JSON's extensions spell them, as Python reads)."""
        return json.dumps(self.model_dump(mode="python"))

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        """The record in ``text``; a usage error names what is not valid in it."""
        try:
            return cls.model_validate(json.loads(text))
        except ValueError as exc:  # not JSON, or (ValidationError) not a record
            if isinstance(exc, ValidationError):
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                reason = f"{where}: {error['msg']}" if where else str(error["msg"])
            else:
                reason = str(exc)
            raise UsageError(
                f"the upload's run.json is not a run's record ({shorten(reason, 200)})"
            ) from None


def read_record(
    store: WorkspaceStore, run_id: str, related: bool = False, model_id: str | None = None
) -> RunRecord:
    """The record of run ``run_id`` of ``store`` (the datasets loopline logged for data assets left out);
    with ``related``, every other run of the store (a scratch store, holding one training's runs) too;
    with ``model_id``, what MLflow keeps of that logged model of the run."""
    client = store.client
    with store.errors():
        run = client.get_run(run_id)
        logged = client.get_logged_model(model_id) if model_id else None
        names = {e.experiment_id: e.name for e in client.search_experiments()}
        others = _parents_first(
            [
                r
                for r in client.search_runs(list(names), max_results=RELATED_RUNS + 1)
                if r.info.run_id != run_id
            ]
            if related
            else []
        )
        ids = {r.info.run_id for r in others}
        related_runs = [
            RelatedRun(
                id=r.info.run_id,
                parent=_parent(r, ids | {run_id}),
                name=r.info.run_name,
                experiment=names.get(r.info.experiment_id),
                status=r.info.status if r.info.status in {"FINISHED", "FAILED", "KILLED"} else "FAILED",
                params=dict(r.data.params),
                tags=own_tags(dict(r.data.tags)),
                history=_history(store, r),
                datasets=_datasets(r),
            )
            for r in others
        ]
        return RunRecord(
            id=run_id,
            parent=_parent(run, ids),
            name=run.info.run_name,
            experiment=names.get(run.info.experiment_id),
            history=_history(store, run),
            datasets=_datasets(run),
            model=None
            if logged is None
            else RecordedModel(
                params=dict(logged.params or {}),
                tags=own_tags(dict(logged.tags or {})),
                metrics=[(m.key, m.value, int(m.timestamp), int(m.step)) for m in logged.metrics or []],
            ),
            related=related_runs,
        )


def _history(store: WorkspaceStore, run: Any) -> dict[str, list[tuple[float, int, int]]]:
    client, run_id = store.client, run.info.run_id
    return {
        key: [(m.value, int(m.timestamp), int(m.step)) for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }


def _datasets(run: Any) -> list[RecordedDataset]:
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    return [
        RecordedDataset(
            name=item.dataset.name,
            digest=item.dataset.digest,
            source_type=item.dataset.source_type,
            source=item.dataset.source,
            data_schema=item.dataset.schema,
            profile=item.dataset.profile,
            context=next((t.value for t in item.tags if t.key == "mlflow.data.context"), None),
        )
        for item in inputs
        if item.dataset.source_type != DATA_ASSET_SOURCE
    ]


def _parent(run: Any, among: set[str]) -> str | None:
    parent = run.data.tags.get("mlflow.parentRunId")
    return parent if parent in among else None


def _parents_first(runs: list[Any]) -> list[Any]:
    """``runs`` ordered so that a run comes after its parent (oldest first otherwise), at most
    ``RELATED_RUNS`` of them."""
    runs = sorted(runs, key=lambda r: r.info.start_time or 0)[:RELATED_RUNS]
    ids = {r.info.run_id for r in runs}
    placed: set[str] = set()
    ordered: list[Any] = []
    while len(ordered) < len(runs):
        before = len(ordered)
        for run in runs:
            parent = run.data.tags.get("mlflow.parentRunId")
            if run.info.run_id not in placed and (parent not in ids or parent in placed):
                ordered.append(run)
                placed.add(run.info.run_id)
        if len(ordered) == before:  # a cycle of parents (no store makes one): the rest as they are
            ordered += [r for r in runs if r.info.run_id not in placed]
    return ordered


def write_record(store: WorkspaceStore, run_id: str, record: RunRecord, latest: dict[str, float]) -> None:
    """Log ``record``'s metric history and datasets into run ``run_id``, and each of ``latest`` that the
    history lacks as one value (step 0, now)."""
    _write(store, run_id, record.history, record.datasets, latest)


def write_model(
    store: WorkspaceStore, run_id: str, model_id: str, record: RunRecord, tags: dict[str, str]
) -> None:
    """Give logged model ``model_id`` of run ``run_id`` the params, tags (``tags`` over its own) and
    metrics of ``record``'s model, as MLflow gave them to the model where it was logged."""
    from mlflow.entities import Metric

    model = record.model
    if model is None:
        return
    metrics = [Metric(k, value, at, step, model_id=model_id) for k, value, at, step in model.metrics]
    with store.errors():
        if model.params:
            store.client.log_model_params(model_id, dict(model.params))
        store.client.set_logged_model_tags(model_id, {**own_tags(dict(model.tags)), **tags})
        store.log_metrics(run_id, metrics)  # the run's own points already: MLflow links them


def write_related(store: WorkspaceStore, run_id: str, record: RunRecord, tags: dict[str, str]) -> list[str]:
    """Make ``record``'s related runs, each in its experiment (else the record's run's) with ``tags`` over
    its own, nested as they were, and nest run ``run_id`` (the record's run) in its parent; the IDs of the
    runs made. Should one fail, those made before it are marked failed, as the record's run is by its
    caller: none is left looking like a finished trial of a training that was never recorded."""
    made = {record.id: run_id} if record.id else {}
    try:
        _write_related(store, run_id, record, tags, made)
    except BaseException:
        for made_id in made.values():
            if made_id != run_id:
                with contextlib.suppress(Exception):
                    store.client.set_terminated(made_id, status="FAILED")
        raise
    return [made[run.id] for run in record.related]


def _write_related(
    store: WorkspaceStore, run_id: str, record: RunRecord, tags: dict[str, str], made: dict[str, str]
) -> None:
    with store.errors():
        experiment = store.client.get_run(run_id).info.experiment_id
        for run in record.related:
            parent = {"mlflow.parentRunId": made[run.parent]} if run.parent else {}
            if run.experiment:
                store.ensure_experiment(run.experiment)
            own = {k: made.get(v, v) for k, v in own_tags(run.tags).items()}  # a run's ID: its copy's
            created = store.client.create_run(
                store.experiment_id(run.experiment) if run.experiment else experiment,
                tags={**own, **tags, **parent},
                run_name=run.name,
            )
            made[run.id] = created.info.run_id
            if run.params:
                _params(store, created.info.run_id, run.params)
            _write(store, created.info.run_id, run.history, run.datasets, {})
            store.client.set_terminated(created.info.run_id, status=run.status)
        if record.parent:
            store.client.set_tag(run_id, "mlflow.parentRunId", made[record.parent])


def _params(store: WorkspaceStore, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow's most params in one log_batch
        store.client.log_batch(run_id, params=items[start : start + 100])


def _write(
    store: WorkspaceStore,
    run_id: str,
    history: dict[str, list[tuple[float, int, int]]],
    recorded: Iterable[RecordedDataset],
    latest: dict[str, float],
) -> None:
    import time

    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, 0) for key, value in latest.items() if key not in history]
    metrics += [
        Metric(key, value, timestamp, step)
        for key, points in history.items()
        for value, timestamp, step in points
    ]
    datasets = [
        DatasetInput(
            Dataset(d.name, d.digest, d.source_type, d.source, d.data_schema, d.profile),
            [InputTag("mlflow.data.context", d.context)] if d.context else [],
        )
        for d in recorded
    ]
    with store.errors():
        store.log_metrics(run_id, metrics)
        if datasets:
            store.client.log_inputs(run_id, datasets=datasets)

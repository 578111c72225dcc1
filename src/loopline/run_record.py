"""What MLflow shows of a run beyond its last values, carried from one store to another: every logged step
of each metric (the run page's charts), the datasets it logged as inputs, its name and its experiment.

The remote inner loop trains into a scratch store on the caller's machine and packs this record beside
the run's files; the control plane writes it into the dev run it makes, so the run reads in dev as a run
trained there does. The record comes from the caller: it is checked here, bounded, and describes the run
only (the gate, the commit and the author are never read from it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loopline.errors import UsageError, shorten

if TYPE_CHECKING:
    from loopline.mlflow_store import WorkspaceStore

__all__ = [
    "DATA_ASSET_SOURCE",
    "DESCRIPTION_TAG",
    "HISTORY_POINTS",
    "RecordedDataset",
    "RunRecord",
    "read_record",
    "write_record",
]

DATA_ASSET_SOURCE = "loopline-data-asset"
"""The source type of the MLflow datasets loopline logs for a training's data asset versions: the control
plane logs those itself, from the versions it holds, and an upload cannot claim one."""
DESCRIPTION_TAG = "mlflow.note.content"
"""MLflow's tag for a run's description: the one tag of MLflow's own that a copy of a run keeps."""
HISTORY_POINTS = 1_000_000
"""The most metric values one record carries (a value a step, for every metric together)."""
_BATCH = 1000  # MLflow's most metrics in one log_batch

_Name = Annotated[str, Field(min_length=1, max_length=250)]


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


class RunRecord(BaseModel):
    """A run's name, experiment, metric history and datasets (see the module's doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, max_length=250)
    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    history: dict[_Name, list[tuple[float, int, int]]] = Field(
        default_factory=dict, description="each metric's (value, timestamp in ms, step), in logged order"
    )
    datasets: list[RecordedDataset] = Field(default_factory=list, max_length=1000)

    @field_validator("history")
    @classmethod
    def _bounded(
        cls, value: dict[str, list[tuple[float, int, int]]]
    ) -> dict[str, list[tuple[float, int, int]]]:
        if sum(len(points) for points in value.values()) > HISTORY_POINTS:
            raise ValueError(f"more than {HISTORY_POINTS} metric values")
        return value

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
                reason = f"{where}: {error['msg']}"
            else:
                reason = str(exc)
            raise UsageError(
                f"the upload's run.json is not a run's record ({shorten(reason, 200)})"
            ) from None


def read_record(store: WorkspaceStore, run_id: str) -> RunRecord:
    """The record of run ``run_id`` of ``store`` (the datasets loopline logged for data assets left out)."""
    client = store.client
    with store.errors():
        run = client.get_run(run_id)
        history = {
            key: [(m.value, int(m.timestamp), int(m.step)) for m in client.get_metric_history(run_id, key)]
            for key in run.data.metrics
        }
        experiment = client.get_experiment(run.info.experiment_id).name
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    datasets = [
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
    return RunRecord(name=run.info.run_name, experiment=experiment, history=history, datasets=datasets)


def write_record(store: WorkspaceStore, run_id: str, record: RunRecord, latest: dict[str, float]) -> None:
    """Log ``record``'s metric history and datasets into run ``run_id``, and each of ``latest`` that the
    history lacks as one value (step 0, now)."""
    import time

    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, 0) for key, value in latest.items() if key not in record.history
    ]
    metrics += [
        Metric(key, value, timestamp, step)
        for key, points in record.history.items()
        for value, timestamp, step in points
    ]
    datasets = [
        DatasetInput(
            Dataset(d.name, d.digest, d.source_type, d.source, d.data_schema, d.profile),
            [InputTag("mlflow.data.context", d.context)] if d.context else [],
        )
        for d in record.datasets
    ]
    with store.errors():
        for start in range(0, len(metrics), _BATCH):
            store.client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
        if datasets:
            store.client.log_inputs(run_id, datasets=datasets)

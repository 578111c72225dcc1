"""A run's record (name, experiment, every step of its metrics, its datasets) read from one MLflow store and
written into another, through the JSON an upload carries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from loopline.errors import Refused, UsageError
from loopline.inputs import log_datasets
from loopline.mlflow_store import WorkspaceStore
from loopline.run_record import HISTORY_POINTS, RunRecord, read_record, write_record, write_related


def _logged(store: WorkspaceStore) -> str:
    """A run as a training script logs it: a named run in its own experiment, a loss per epoch (one of them
    NaN, one infinite), a final accuracy and a dataset."""
    store.ensure_experiment("churn")
    run_id = store.create_run("churn", {}, run_name="epochs")
    client = store.client
    for step, loss in enumerate([0.9, math.nan, math.inf, 0.2]):
        client.log_metric(run_id, "loss", loss, timestamp=1_000 + step, step=step)
    client.log_metric(run_id, "accuracy", 0.8, timestamp=2_000)
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]})
    dataset = mlflow.data.from_pandas(frame, source="s3://churn/rows.parquet", name="rows", targets="label")
    client.log_inputs(run_id, datasets=[mlflow.entities.DatasetInput(dataset._to_mlflow_entity(), [])])
    return run_id


def test_a_record_carries_every_step_and_dataset_of_a_run_into_another_store(tmp_path: Path) -> None:
    laptop, dev = WorkspaceStore.scratch(tmp_path / "laptop"), WorkspaceStore.scratch(tmp_path / "dev")
    laptop.provision(None)
    dev.provision("loopline")
    record = read_record(laptop, _logged(laptop))
    assert (record.name, record.experiment) == ("epochs", "churn")

    carried = RunRecord.from_json(record.to_json())  # NaN and infinity survive the JSON
    dev.ensure_experiment("churn")
    copy = dev.create_run("churn", {}, run_name=carried.name)
    write_record(dev, copy, carried, {"accuracy": 0.8, "f1": 0.7})

    history = [(m.step, m.value, m.timestamp) for m in dev.client.get_metric_history(copy, "loss")]
    # as the laptop's store holds them (SQLite keeps infinity as the largest float)
    assert history[0] == (0, 0.9, 1_000) and history[2:] == [
        (2, 1.7976931348623157e308, 1_002),
        (3, 0.2, 1_003),
    ]
    assert history[1][0] == 1 and math.isnan(history[1][1])
    run = dev.client.get_run(copy)
    # a figure the history lacks is logged once; one it holds keeps its own timestamp
    assert run.data.metrics == {"loss": 0.2, "accuracy": 0.8, "f1": 0.7}
    assert dev.client.get_metric_history(copy, "accuracy")[0].timestamp == 2_000
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.source_type) == ("rows", "s3")
    assert "label" in dataset.dataset.profile + dataset.dataset.schema
    again = read_record(dev, copy)
    assert (again.name, again.experiment, again.datasets) == (record.name, record.experiment, record.datasets)


def test_a_record_leaves_out_loopline_s_data_assets_and_refuses_claiming_one(tmp_path: Path) -> None:
    from loopline.inputs import TrainingInput

    store = WorkspaceStore.scratch(tmp_path)
    store.provision("loopline")
    run_id = store.create_run("loopline", {})
    asset = TrainingInput("train", "rows:1", f"sha256:{'0' * 64}", Path("rows.csv"), "inbox://rows/1")
    log_datasets(store.client, [run_id], [asset])
    assert read_record(store, run_id).datasets == []  # the control plane logs those from its own versions
    claimed = {"name": "rows", "digest": "0", "source_type": "loopline-data-asset", "source": ""}
    with pytest.raises(UsageError, match=r"datasets\.0\.source_type: Value error, a data asset version"):
        RunRecord.from_json(json.dumps({"datasets": [claimed]}))
    with pytest.raises(UsageError, match=r"not a run's record \(Expecting property name"):
        RunRecord.from_json("{not json")
    too_many = {"loss": [[0.1, 0, step] for step in range(HISTORY_POINTS // 2 + 1)]}
    too_many["accuracy"] = too_many["loss"]
    with pytest.raises(UsageError, match=f"record \\(Value error, more than {HISTORY_POINTS} metric values"):
        RunRecord.from_json(json.dumps({"history": too_many}))


def test_a_run_is_not_recorded_into_an_experiment_that_was_deleted(tmp_path: Path) -> None:
    store = WorkspaceStore.scratch(tmp_path)
    store.provision("churn")
    store.client.delete_experiment(store.experiment_id("churn"))
    with pytest.raises(
        Refused, match=r"experiment 'churn' is deleted in dev; restore it \(`mlflow experiments"
    ):
        store.ensure_experiment("churn")


def test_the_other_runs_of_a_training_are_carried_nested_as_they_were(tmp_path: Path) -> None:
    """A search by hand: a parent run logs the model, its children are the candidates; a sibling run in an
    experiment of its own. Each copy is nested under the copy of its parent."""
    laptop, dev = WorkspaceStore.scratch(tmp_path / "laptop"), WorkspaceStore.scratch(tmp_path / "dev")
    laptop.provision("search")
    dev.provision("loopline")
    parent = laptop.create_run("search", {"mlflow.user": "someone"}, run_name="search")
    children = [
        laptop.create_run("search", {"mlflow.parentRunId": parent, "best": parent}, run_name=f"C={c}")
        for c in (0.1, 1.0)
    ]
    for child, c in zip(children, (0.1, 1.0), strict=True):
        laptop.client.log_param(child, "C", c)
        laptop.client.log_metric(child, "loss", c, step=3)
    laptop.ensure_experiment("elsewhere")
    sibling = laptop.create_run("elsewhere", {}, run_name="sibling")
    for run_id, status in ((parent, "FINISHED"), *zip(children, ("FINISHED", "KILLED"), strict=True)):
        laptop.client.set_terminated(run_id, status=status)
    # a run its process left unfinished (a trial killed mid-way) is copied as failed
    assert laptop.client.get_run(sibling).info.status == "RUNNING"

    record = RunRecord.from_json(read_record(laptop, parent, related=True).to_json())
    assert [r.name for r in record.related] == ["C=0.1", "C=1.0", "sibling"]
    copy = dev.create_run("loopline", {}, run_name=record.name)
    made = write_related(dev, copy, record, {"loopline.git_commit": "a" * 40, "mlflow.user": "dev"})
    runs = [dev.client.get_run(run_id) for run_id in made]
    copy_experiment = runs[0].info.experiment_id
    assert [r.data.tags.get("mlflow.parentRunId") for r in runs] == [copy, copy, None]
    assert [r.data.params.get("C") for r in runs] == ["0.1", "1.0", None]
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED", "FAILED"]
    assert {r.data.tags["mlflow.user"] for r in runs} == {"dev"} and runs[0].data.tags["best"] == copy
    assert dev.client.get_experiment(runs[2].info.experiment_id).name == "elsewhere"
    assert dev.client.get_metric_history(made[0], "loss")[0].step == 3

    # A write that fails part-way (the sibling's experiment deleted in dev meanwhile) leaves no copy that
    # looks finished: those made before it are failed, as the record's run is by its caller.
    dev.client.delete_experiment(runs[2].info.experiment_id)
    again = dev.create_run("loopline", {}, run_name=record.name)
    with pytest.raises(Refused, match="experiment 'elsewhere' is deleted in dev"):
        write_related(dev, again, record, {"mlflow.user": "dev"})
    half = dev.client.search_runs([copy_experiment], f"tags.mlflow.parentRunId = '{again}'")
    assert len(half) == 2 and {r.info.status for r in half} == {"FAILED"}

    # the record's links are checked: a parent after its child, a parent that is not there, a repeat
    related = [r.model_dump() for r in record.related]
    for broken, reason in (
        (
            {"related": [{"id": "b", "parent": "a"}, {"id": "a"}]},
            "related run b names parent a, which is not",
        ),
        ({"related": related[:2]}, f"names parent {parent}, which is not before it"),
        ({"related": [related[2], related[2]]}, "is there twice"),
        ({"parent": "nothing"}, "the run names parent nothing, which is not one of the related runs"),
    ):
        with pytest.raises(UsageError, match=reason):
            RunRecord.from_json(json.dumps(broken))

"""What a release sends a new deployment: the input example, else rows of the project's data."""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

import loopline
from loopline.instance import Instance
from loopline.smoke import smoke_request
from tests.conftest import ProjectFactory
from tests.helpers import edit_yaml


def test_a_model_without_an_example_is_sent_rows_of_the_data_the_project_holds_for_it(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    rows = pd.DataFrame({"rooms": [3.0, 4.0, 2.0], "area": [70.0, 95.0, 40.0], "price": [1.0, 2.0, 0.5]})
    fitted = LinearRegression().fit(rows[["rooms", "area"]], rows["price"])
    bare = tmp_path / "bare"  # logged as autolog logs it: a signature, no input example
    mlflow.sklearn.save_model(fitted, bare, signature=infer_signature(rows[["rooms", "area"]], rows["price"]))
    example = tmp_path / "example"
    mlflow.sklearn.save_model(fitted, example, input_example=rows[["rooms", "area"]].head(2))
    instance = Instance.open(project)
    assert smoke_request(instance, bare) is None  # no held-out rows, no reference rows: nothing to send
    assert smoke_request(instance, example).source == "the model's input example"  # type: ignore[union-attr]

    # the training rows of the monitoring reference, of the columns the model takes (its label left out)
    (tmp_path / "train.csv").write_text(rows.assign(city="Oslo").to_csv(index=False))
    loopline.upload_data("train", tmp_path / "train.csv", project=project)
    edit_yaml(project / "loopline.yaml", monitoring={"reference_data": "train"})
    sent = smoke_request(Instance.open(project), bare)
    assert sent is not None and (sent.route, sent.rows) == ("score", 3)
    assert sent.source == "the first rows of train (monitoring.reference_data)"
    assert sent.payload == {
        "input_data": {"columns": ["rooms", "area"], "data": [[3.0, 70.0], [4.0, 95.0], [2.0, 40.0]]}
    }

    # held-out rows come first; rows without the model's columns are none to send
    (tmp_path / "heldout.csv").write_text("rooms,price\n5,3.0\n")
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    edit_yaml(project / "loopline.yaml", validation={"data": "heldout", "label": "price"})
    assert (
        smoke_request(Instance.open(project), bare).source
        == "the first rows of train (monitoring.reference_data)"
    )  # type: ignore[union-attr]
    (tmp_path / "heldout.csv").write_text("area,rooms,price\n60,2,1.0\n")
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    sent = smoke_request(Instance.open(project), bare)
    assert sent is not None and sent.source == "the first rows of heldout (validation.data)"
    assert sent.payload["input_data"] == {"columns": ["rooms", "area"], "data": [[2, 60]]}


def test_an_example_with_a_missing_value_is_sent_as_the_model_s_own_with_null_for_it(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    import numpy as np
    import orjson
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    project = new_project("simple")
    rows = pd.DataFrame({"age": [22.0, np.nan, 35.0], "fare": [7.25, 71.3, 8.05]})
    fitted = make_pipeline(SimpleImputer(), LinearRegression()).fit(rows, [0.0, 1.0, 0.0])
    folder = tmp_path / "titanic"  # MLflow writes the missing age as NaN, which JSON has not
    mlflow.sklearn.save_model(fitted, folder, input_example=rows.head(2), serialization_format="cloudpickle")
    assert "NaN" in (folder / "serving_input_example.json").read_text()
    sent = smoke_request(Instance.open(project), folder)
    # was: no input example (a release then sent nothing, or rows of other data, "the model has none")
    assert sent is not None and sent.source == "the model's input example" and sent.rows == 2
    body = orjson.loads(orjson.dumps(sent.payload))
    assert body["dataframe_split"]["data"] == [[22.0, 7.25], [None, 71.3]]

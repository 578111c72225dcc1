"""How the scoring core writes a model's answers: as MLflow's scoring server writes them."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import predictions_to_json

from loopline.serving.core import answer_body

ANSWERS = {
    "float32": np.array([0.015509413, 0.99794, 1 / 3], dtype=np.float32),
    "float32-rows": np.array([[0.1, 0.9], [1 / 3, 2 / 3]], dtype=np.float32),
    "float64": np.array([0.1, 1 / 3]),
    "int64": np.array([1, 2], dtype=np.int64),
    "labels": np.array(["setosa", "virginica"]),  # what `target_names[y]` makes a classifier answer
    "objects": np.array(["a", 1, None], dtype=object),
    "series": pd.Series([1, 2]),
    "named-series": pd.Series(["low", "high"], name="band"),
    "table": pd.DataFrame({"score": np.array([1 / 3, 0.7], dtype=np.float32), "label": [0, 1]}),
    "numbered-table": pd.DataFrame(np.array([[0.2, 0.8], [0.6, 0.4]])),
    "timestamps": pd.DataFrame({"due": pd.to_datetime(["2024-01-01 00:00", "2024-02-29 12:30"])}),
    "dict": {"a": np.array([1.0, 2.0], dtype=np.float32)},
    # a Python model answering what it computed with NumPy, not an array of it
    "float32-dict": {"a": np.array([1 / 3, 0.1], dtype=np.float32), "b": np.float32(0.7)},
    "float32-scalars": [np.float32(1 / 3), np.float32(0.1)],
    "float32-scalar-rows": [[np.float32(0.1), np.float32(0.9)], [np.float32(1 / 3), np.float32(2 / 3)]],
    "float16-scalars": [np.float16(0.1)],
    # arrays that are not C-contiguous: a column of probabilities, a matrix NumPy or Fortran code
    # laid out by columns, and such arrays inside what a Python model answers
    "probability-column": np.array([[0.2, 0.8], [0.6, 0.4], [2 / 3, 1 / 3]])[:, 1],
    "label-column": np.array([[0, 1], [1, 0]], dtype=np.int64)[:, 0],
    "by-columns": np.asfortranarray(np.array([[0.2, 0.8], [0.6, 0.4]])),
    "columns-dict": {"p": np.array([[0.2, 0.8], [0.6, 0.4]])[:, 1]},
    "columns-list": [np.array([[0.2, 0.8], [0.6, 0.4]])[:, 1]],
}


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_answers_read_back_as_what_mlflow_server_writes(kind: str) -> None:
    answers = ANSWERS[kind]
    theirs = io.StringIO()
    predictions_to_json(answers, theirs)
    assert orjson.loads(answer_body(answers, wrapped=True)) == json.loads(theirs.getvalue())
    assert orjson.loads(answer_body(answers, wrapped=False)) == json.loads(theirs.getvalue())["predictions"]


def test_an_answer_json_cannot_hold_is_a_type_error_naming_its_type() -> None:
    with pytest.raises(TypeError, match="complex"):
        answer_body(np.array([1 + 2j]).astype(object), wrapped=True)

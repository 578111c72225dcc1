"""How the scoring core writes a model's answers."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import predictions_to_json

from loopline.serving.core import _predictions


@pytest.mark.parametrize(
    "answers",
    [
        np.array([0.015509413, 0.99794, 1 / 3], dtype=np.float32),
        np.array([[0.1, 0.9], [1 / 3, 2 / 3]], dtype=np.float32),
        np.array([0.1, 1 / 3]),
        np.array([1, 2], dtype=np.int64),
        pd.DataFrame({"score": np.array([1 / 3, 0.7], dtype=np.float32), "label": [0, 1]}),
    ],
    ids=["float32", "float32-rows", "float64", "int64", "table"],
)
def test_answers_read_back_as_the_numbers_mlflow_server_writes(answers: object) -> None:
    # A float32 printed with its own shortest digits reads back as another float64 than MLflow's answer.
    ours = orjson.loads(
        orjson.dumps({"predictions": _predictions(answers)}, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    theirs = io.StringIO()
    predictions_to_json(answers, theirs)
    assert ours == json.loads(theirs.getvalue())

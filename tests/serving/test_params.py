"""A request's params against a model's params schema: MLflow's conversions, and refusals that name the
parameter without repeating the value sent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mlflow.models import infer_signature

from loopline.errors import RequestRejected
from loopline.serving.params import checked_params

SCHEMA = infer_signature(
    np.array([[1.0]]), np.array([1.0]), params={"threshold": 0.5, "labels": ["no", "yes"], "top": 3}
).params


def test_given_params_are_converted_as_mlflow_converts_them_and_the_rest_take_their_defaults() -> None:
    assert checked_params(SCHEMA, {"threshold": 1, "undeclared": "x"}) == {
        "threshold": 1.0,
        "labels": ["no", "yes"],
        "top": 3,
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"threshold": "0.9"},
            "params 'threshold' must be a number (double, as the model's signature says; 0.5 where not "
            "given), not a string",
        ),
        (
            {"top": 2.5},
            "params 'top' must be a whole number (long, as the model's signature says; 3 where not given), "
            "not a number",
        ),
        (
            {"labels": "yes"},
            "params 'labels' must be a list, each item a string (string, as the model's signature says; "
            '["no", "yes"] where not given), not a string',
        ),
        (
            {"threshold": 0.2, "labels": [1, "yes"]},
            "params 'labels' must be a list, each item a string (string, as the model's signature says; "
            '["no", "yes"] where not given), not a list holding a string and an integer',
        ),
    ],
)
def test_a_value_the_model_cannot_take_is_refused_naming_the_parameter_not_the_value(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestRejected) as refused:
        checked_params(SCHEMA, given)
    assert (refused.value.http_status, refused.value.error_code, refused.value.message) == (
        400,
        "BAD_PARAMS",
        message,
    )

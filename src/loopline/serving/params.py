"""A request's ``params``, checked against the model's params schema as MLflow's scoring server checks
them (MLflow's own rule converts and refuses), and refused naming the parameter and what it takes.

MLflow's refusal quotes the values it was sent; the answer here never repeats the request's content.
"""

from __future__ import annotations

import json
from typing import Any

from loopline.errors import RequestRejected
from loopline.serving.requests import kind_of

__all__ = ["checked_params"]


def checked_params(schema: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the model takes them (MLflow's conversions, the schema's defaults for those not
    given); RequestRejected (400, BAD_PARAMS) naming the first one the model cannot take."""
    from mlflow.models.utils import _enforce_params_schema

    try:
        return dict(_enforce_params_schema(params, schema))
    except Exception as exc:
        refused = exc
    for spec in schema.params:
        if spec.name in params:
            try:
                _enforce_params_schema({spec.name: params[spec.name]}, type(schema)([spec]))
            except Exception:
                raise RequestRejected(400, "BAD_PARAMS", _refusal(spec, params[spec.name])) from None
    raise RequestRejected(  # not one parameter's fault: MLflow's reason, without the values it quotes
        400, "BAD_PARAMS", f"the model does not take these params ({type(refused).__name__})"
    )


_WORDS = {
    "double": "a number",
    "float": "a number",
    "long": "a whole number",
    "integer": "a whole number",
    "boolean": "true or false",
    "string": "a string",
    "datetime": "a date and time",
}


def _refusal(spec: Any, value: Any) -> str:
    kind = str(getattr(spec.dtype, "name", spec.dtype))
    words = _WORDS.get(kind, kind)
    takes = f"a list, each item {words}" if spec.shape is not None else words
    default = f"; {json.dumps(spec.default, default=str)} where not given" if spec.default is not None else ""
    return (
        f"params '{spec.name}' must be {takes} ({kind}, as the model's signature says{default}), not "
        f"{_described(value)}"
    )


def _described(value: Any) -> str:
    if isinstance(value, list):
        kinds = sorted({kind_of(item) for item in value})
        return f"a list holding {' and '.join(kinds)}" if kinds else "an empty list"
    return kind_of(value)

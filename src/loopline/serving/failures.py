"""When a model raises on a request: the column (and row) to blame where it can be told, and why.

A model's own error is rarely about HTTP; the caller needs to know which of their values the model could
not take. The answer names a column the error mentions, else a column holding a null, else a column
holding a value the error quotes, else the column whose value, replaced by the model's input example's,
lets the model answer (tried on the first row the model fails on alone); and the model's own error,
shortened, without file paths. The trying happens only when a model fails, and is bounded.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from loopline.serving.schema import InputSchema

__all__ = ["describe_failure", "offset_refusal"]

_PATH = re.compile(r"(?:/[\w.\-]+){2,}")
_ROWS_TRIED = 64


def describe_failure(
    schema: InputSchema, predict: Any, data: Any, exc: BaseException, example: Any = None
) -> str:
    """What to tell the caller about ``exc``, raised by ``predict`` on ``data`` (``example``: the model's
    input example as the model takes it, when it has one)."""
    told = _restated(exc)
    return f"{_where(schema, predict, data, told, example)}: {_reason(told)}"


def _restated(exc: BaseException) -> BaseException:
    """The error that says what went wrong: ``exc``, or the one it was raised from where its message
    restates that one's (statsmodels raises "predict requires that you use a DataFrame..." from patsy's
    "observation with value 'east' does not match any of the expected levels", and quotes it below)."""
    cause = exc.__cause__
    while cause is not None and len(first := (str(cause).strip().splitlines() or [""])[0]) >= _RESTATED:
        if first not in str(exc):
            break
        exc, cause = cause, cause.__cause__
    return exc


_RESTATED = 20  # a cause's first line shorter than this (a KeyError's 'area') may be in a message by chance


def offset_refusal(schema: InputSchema, data: Any, exc: BaseException) -> str | None:
    """Why a model that failed on ``data`` was sent what its signature does not take: dates and times with
    a time zone offset (JavaScript's ``toISOString`` writes ``...Z``) in a ``datetime`` column, which is
    MLflow's type of dates without one (its server refuses an offset); None where no such column is."""
    dtypes = getattr(data, "dtypes", None)
    if dtypes is None:
        return None
    for column in schema.columns or ():
        if column.type == "datetime" and getattr(dtypes.get(column.name), "tz", None) is not None:
            return (
                f"column '{column.name}' holds dates and times with a time zone offset, and the model fails "
                f"on them ({_reason(_restated(exc))}); its signature's dates and times have none, as "
                "MLflow's server takes them: send them without one (in the time zone the training's were)"
            )
    return None


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    if "Error: " in text:  # MLflow's messages quote the whole input before the reason
        text = text.rsplit("Error: ", 1)[1]
    text = _PATH.sub("<path>", text)
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(schema: InputSchema, predict: Any, data: Any, exc: BaseException, example: Any) -> str:
    # an error's own message, where it keeps one apart from what its text adds (patsy's PatsyError adds
    # the formula, which names every column, with a caret under the term that failed)
    message = said if isinstance(said := getattr(exc, "message", None), str) else str(exc)
    named = [name for name in schema.names if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message)]
    nulls = _null_cells(data)
    if named:
        row = next((r for c, r in nulls if c == named[0]), None)
        return f"column '{named[0]}'" + (f" (null in row {row})" if row is not None else "")
    if nulls:
        column, row = _likeliest(nulls, data, message)
        return f"column '{column}' (null in row {row}, which the model does not take)"
    if (held := _holding_quoted(data, message)) is not None:
        return f"column '{held[0]}' row {held[1]} (its value is one the model's error names)"
    row = _failing_row(predict, data)
    blamed = _blamed_column(schema, predict, data, row or 0, example)
    at = f" row {row}" if row is not None else ""
    if blamed is not None:
        return f"column '{blamed}'{at} (with the input example's value there, the model answers)"
    return f"row {row}" if row is not None else "this input"


_QUOTED = re.compile(r"'([^']{1,200})'|\"([^\"]{1,200})\"")


def _holding_quoted(data: Any, message: str) -> tuple[str, int] | None:
    """(column, first row) of the first text column holding the first value the model's error quotes that
    any text column holds, as scikit-learn's encoders quote a category they never saw ("Found unknown
    categories ['central'] in column 1", which numbers the encoder's columns, not the request's); None
    where none does."""
    quoted = list(dict.fromkeys(a or b for a, b in _QUOTED.findall(message)))
    if not quoted or not hasattr(data, "columns"):
        return None
    texts = [column for column in data.columns if data[column].dtype.kind == "O"]  # object, or str dtype
    for value in quoted:  # the first the error quotes: patsy quotes the new value, then those it expected
        for column in texts:
            rows = np.flatnonzero((data[column] == value).to_numpy())
            if rows.size:
                return str(column), int(rows[0])
    return None


def _null_cells(data: Any) -> list[tuple[str, int]]:
    """(column, first row) of each column holding a null, in column order."""
    isna = getattr(data, "isna", None)
    if isna is None:
        return []
    found = []
    missing = isna()
    for column in data.columns:
        rows = np.flatnonzero(missing[column].to_numpy())
        if rows.size:
            found.append((str(column), int(rows[0])))
    return found


def _likeliest(nulls: list[tuple[str, int]], data: Any, message: str) -> tuple[str, int]:
    """Of the columns holding a null, the first whose null is the kind the model's message names (a None,
    "unknown categories [None]"; a NaN, "Input X contains NaN"); else the first."""
    said = {"None": re.search(r"\bNone\b", message) is not None, "NaN": _NAN.search(message) is not None}
    for column, row in nulls:
        value = data[column].iloc[row] if column in data.columns else None
        if said["None" if value is None else "NaN"]:
            return column, row
    return nulls[0]


_NAN = re.compile(r"\bnan\b", re.I)


def _row_of(data: Any, row: int) -> Any:
    return data.iloc[[row]].copy() if hasattr(data, "iloc") else np.array(data[row : row + 1], copy=True)


def _blamed_column(schema: InputSchema, predict: Any, data: Any, row: int, example: Any) -> str | None:
    """The column whose value, set to the input example's, lets the model answer ``row``."""
    if example is None or not schema.names or len(schema.names) > _ROWS_TRIED:
        return None
    try:
        if len(data) <= row or len(example) == 0:
            return None
    except TypeError:
        return None
    for position, name in enumerate(schema.names):
        part = _row_of(data, row)
        try:
            if hasattr(part, "iloc"):
                part[name] = example[name].iloc[0]
            else:
                part[0, position] = example[0, position]
            predict(part)
        except Exception:  # not this column (or the example does not fit): try the next
            continue
        return name
    return None


def _failing_row(predict: Any, data: Any) -> int | None:
    """The first row the model fails on by itself, trying at most a few rows; None when it cannot tell."""
    count = len(data) if hasattr(data, "__len__") else 0
    if count < 2 or count > _ROWS_TRIED:
        return None
    for row in range(count):
        part = data.iloc[[row]] if hasattr(data, "iloc") else data[row : row + 1]
        try:
            predict(part)
        except Exception:  # the row we are looking for
            return row
    return None

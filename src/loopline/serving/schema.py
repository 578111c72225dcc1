"""Scoring requests checked against a model's MLflow signature and turned into model input.

Plain functions, no web framework. Numeric signatures take a fast path straight to a float64 matrix;
anything else becomes a typed pandas DataFrame. Every refusal is a ``RequestRejected`` whose message
names the column, row or limit and never repeats the request's content.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import orjson

from loopline.errors import RequestRejected

__all__ = ["Column", "InputSchema", "Table", "parse_body", "to_model_input"]

NUMERIC = frozenset({"double", "float", "long", "integer"})
INTEGER = frozenset({"long", "integer"})
INTEGER_BITS = {"long": 64, "integer": 32}  # MLflow's long is an int64, its integer an int32
MAX_NAMES_SHOWN = 8

SCORE_KEYS = ("input_data",)
INVOCATION_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def bad(code: str, message: str, status: int = 400) -> RequestRejected:
    """A client error with its code."""
    return RequestRejected(status, code, message)


@dataclass(frozen=True)
class Column:
    """One input column of a signature."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in order; ``None`` columns means the model has no signature."""

    columns: tuple[Column, ...] | None
    names: list[str] = field(init=False, repr=False, compare=False)
    index: dict[str, int] = field(init=False, repr=False, compare=False)
    fast: bool = field(init=False, compare=False)
    integer_positions: tuple[int, ...] = field(init=False, compare=False)
    integer_bits: tuple[int, ...] = field(init=False, compare=False)  # of each integer position
    integer_limits: np.ndarray = field(init=False, repr=False, compare=False)  # 2 ** (bits - 1), as floats

    def __post_init__(self) -> None:
        columns = self.columns or ()
        object.__setattr__(self, "names", [c.name for c in columns])
        object.__setattr__(self, "index", {c.name: i for i, c in enumerate(columns)})
        object.__setattr__(
            self, "fast", bool(columns) and all(c.type in NUMERIC and c.required for c in columns)
        )
        object.__setattr__(
            self, "integer_positions", tuple(i for i, c in enumerate(columns) if c.type in INTEGER)
        )
        object.__setattr__(
            self, "integer_bits", tuple(INTEGER_BITS[columns[i].type] for i in self.integer_positions)
        )
        object.__setattr__(
            self, "integer_limits", np.exp2(np.asarray(self.integer_bits, dtype=np.float64) - 1)
        )

    @classmethod
    def from_signature(cls, signature: Any) -> InputSchema:
        """The schema of an MLflow ``ModelSignature`` (or none when the model has no column signature)."""
        inputs = getattr(signature, "inputs", None)
        named: Any = getattr(inputs, "has_input_names", None)
        if inputs is None or named is None or not named():
            return cls(None)
        columns = []
        for spec in inputs.inputs:
            kind = getattr(spec, "type", None)
            name = getattr(kind, "name", None) or str(kind)
            columns.append(Column(str(spec.name), str(name).lower(), bool(getattr(spec, "required", True))))
        return cls(tuple(columns))


@dataclass
class Table:
    """A request's input as column names and rows, before it is checked against a schema."""

    columns: list[Any] | None
    rows: list[Any]
    finite: bool = False  # every number came from orjson, which never yields NaN or infinity
    source: bytes | None = field(default=None, repr=False)  # the JSON document the rows were read from


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_NAMES_SHOWN else "")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse_body(route: str, content_type: str, body: bytes) -> Table:
    """The body of a ``score`` or ``invocations`` request as a table."""
    media = (
        content_type if content_type == "application/json" else content_type.split(";", 1)[0].strip().lower()
    )
    if not body:
        raise bad("EMPTY_BODY", "the request body is empty; send the input as JSON (or CSV to /invocations)")
    if media == "text/csv" and route == "invocations":
        return _parse_csv(body)
    if media != "application/json":
        accepted = "application/json" + (" or text/csv" if route == "invocations" else "")
        got = media or "no Content-Type"
        raise bad("UNSUPPORTED_MEDIA_TYPE", f"Content-Type must be {accepted} (got {got})", 415)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad(
            "BAD_JSON", f"the request body is not valid JSON ({str(exc).split(':', 1)[0]} at byte {exc.pos})"
        ) from None
    if not isinstance(document, dict):
        raise bad("BAD_INPUT", f"the request body must be a JSON object, not {_kind(document)}")
    keys = SCORE_KEYS if route == "score" else INVOCATION_KEYS
    if len(document) == 1:  # the usual case: only the input
        key = next(iter(document))
        if key in keys:
            return _parsed(_TABLE_PARSERS[key](document[key]), body)
    present = [key for key in keys if key in document]
    unknown = sorted(set(document) - set(keys) - {"params"})
    if unknown:
        raise bad("BAD_INPUT", f"unknown field '{unknown[0]}' in the request; expected {' or '.join(keys)}")
    if len(present) != 1:
        what = "exactly one of " + ", ".join(keys) if len(keys) > 1 else f"the field '{keys[0]}'"
        raise bad("BAD_INPUT", f"the request must have {what}")
    key = present[0]
    return _parsed(_TABLE_PARSERS[key](document[key]), body)


def _parsed(table: Table, body: bytes) -> Table:
    table.finite = True
    table.source = body
    return table


_SPLIT_FIELDS = frozenset({"columns", "data", "index"})


def _split(value: Any, field_name: str) -> Table:
    if type(value) is dict and len(value) == 2:  # the usual case: {"columns": [...], "data": [...]}
        columns, data = value.get("columns"), value.get("data")
        if type(columns) is list and type(data) is list:
            return Table(columns, data)
    if isinstance(value, list):
        return Table(None, value)
    if not isinstance(value, dict):
        raise bad(
            "BAD_INPUT", f"'{field_name}' must be an object with 'columns' and 'data', not {_kind(value)}"
        )
    if not value.keys() <= _SPLIT_FIELDS:
        extra = sorted(set(value) - _SPLIT_FIELDS)
        raise bad("BAD_INPUT", f"unknown field '{field_name}.{extra[0]}'; expected columns, data and index")
    if "data" not in value:
        raise bad("BAD_INPUT", f"'{field_name}' has no 'data'")
    columns = value.get("columns")
    if columns is not None and not isinstance(columns, list):
        raise bad("BAD_INPUT", f"'{field_name}.columns' must be a list of column names")
    data = value["data"]
    if not isinstance(data, list):
        raise bad("BAD_INPUT", f"'{field_name}.data' must be a list of rows")
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise bad("BAD_INPUT", f"'{field_name}.index' must be a list with one entry per row")
    return Table(columns, data)


def _records(value: Any, field_name: str) -> Table:
    if not isinstance(value, list):
        raise bad("BAD_INPUT", f"'{field_name}' must be a list of records, not {_kind(value)}")
    if not value:
        return Table([], [])
    if not all(isinstance(record, dict) for record in value):
        row = next(i for i, record in enumerate(value) if not isinstance(record, dict))
        raise bad("BAD_INPUT", f"'{field_name}' row {row} must be an object of column: value")
    columns = list(value[0])
    names = set(columns)
    for row, record in enumerate(value):
        if set(record) != names:
            missing = sorted(names - set(record)) or sorted(set(record) - names)
            raise bad("BAD_INPUT", f"'{field_name}' row {row} has other columns than row 0 ('{missing[0]}')")
    return Table(columns, [[record[name] for name in columns] for record in value])


def _instances(value: Any, field_name: str = "instances") -> Table:
    if isinstance(value, dict):
        return _columnar(value, field_name)
    if not isinstance(value, list):
        raise bad("BAD_INPUT", f"'{field_name}' must be a list, not {_kind(value)}")
    if value and all(isinstance(item, dict) for item in value):
        return _records(value, field_name)
    if value and not any(isinstance(item, list | dict) for item in value):
        return Table(None, [[item] for item in value])
    return Table(None, value)


def _columnar(value: dict[str, Any], field_name: str) -> Table:
    lists = list(value.values())
    if not all(isinstance(column, list) for column in lists):
        raise bad("BAD_INPUT", f"'{field_name}' as an object must map each column to a list of values")
    lengths = {len(column) for column in lists}
    if len(lengths) > 1:
        raise bad("BAD_INPUT", f"the columns of '{field_name}' have different lengths")
    return Table(list(value), [list(row) for row in zip(*lists, strict=True)])


_TABLE_PARSERS: dict[str, Callable[[Any], Table]] = {
    "input_data": lambda v: _split(v, "input_data"),
    "dataframe_split": lambda v: _split(v, "dataframe_split"),
    "dataframe_records": lambda v: _records(v, "dataframe_records"),
    "instances": _instances,
    "inputs": lambda v: _instances(v, "inputs"),
}


def _parse_csv(body: bytes) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad("BAD_ENCODING", f"the CSV body is not UTF-8 (at byte {exc.start})") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise bad("BAD_CSV", f"the CSV body cannot be read ({exc})") from None
    rows = [row for row in rows if row]
    if not rows:
        raise bad("EMPTY_INPUT", "the CSV body has no header row")
    return Table(rows[0], [[_csv_value(cell) for cell in row] for row in rows[1:]])


class _CsvCell(str):
    """A CSV cell: text that the schema may read as a number."""

    __slots__ = ()


def _csv_value(cell: str) -> Any:
    return None if cell == "" else _CsvCell(cell)


def to_model_input(schema: InputSchema, table: Table, *, matrix: bool = True) -> tuple[Any, int]:
    """The table checked against ``schema``: a float64 matrix (numeric, when ``matrix``) or a DataFrame."""
    rows = table.rows
    if not isinstance(rows, list):
        raise bad("BAD_INPUT", "the rows must be a list")
    if not rows:
        raise bad("EMPTY_INPUT", "there are no rows to score")
    if schema.columns is None:
        return _untyped_frame(table), len(rows)
    columns = _request_columns(schema, table.columns, rows)
    if schema.fast and matrix:
        return _matrix(schema, columns, rows, table.finite, table.source), len(rows)
    return _frame(schema, columns, rows), len(rows)


def _column_name(schema: InputSchema, position: int, name: Any) -> str:
    """A request's column name as a string; integers only where the model's names are those digits."""
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise bad("BAD_COLUMN_NAME", f"column {position} has a name that is {_kind(name)}; use strings")
    if isinstance(name, int):
        if str(name) not in schema.index:
            raise bad(
                "BAD_COLUMN_NAME",
                f"column {position} is named by the integer {name}; the model's columns are strings "
                f"({_names(schema.names)})",
            )
        return str(name)
    return name


def _request_columns(schema: InputSchema, given: list[Any] | None, rows: list[Any]) -> list[str]:
    names = schema.names
    if given == names:  # the usual case: the model's own columns, in its order
        return names
    if given is None:
        width = len(rows[0]) if isinstance(rows[0], list) else -1
        if width != len(names):
            raise bad(
                "MISSING_COLUMNS",
                f"rows without column names must have {len(names)} values in the "
                f"model's order ({_names(names)}); name the columns instead",
            )
        return names
    columns = [_column_name(schema, position, name) for position, name in enumerate(given)]
    if len(set(columns)) != len(columns):
        duplicate = next(c for c in columns if columns.count(c) > 1)
        raise bad("DUPLICATE_COLUMN", f"column '{duplicate[:100]}' appears twice")
    unknown = [c for c in columns if c not in schema.index]
    if unknown:
        raise bad("UNKNOWN_COLUMN", f"unknown column '{unknown[0][:100]}'; the model takes {_names(names)}")
    present = set(columns)
    missing = [c.name for c in schema.columns or () if c.required and c.name not in present]
    if missing:
        raise bad(
            "MISSING_COLUMN",
            f"missing column '{missing[0]}'"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
        )
    return columns


_NUMBERS = frozenset({int, float})


def _check_row_shapes(rows: list[Any], width: int) -> None:
    if all(type(row) is list and len(row) == width for row in rows):
        return
    for number, row in enumerate(rows):
        if not isinstance(row, list):
            raise bad("BAD_ROW", f"row {number} must be a list of values, not {_kind(row)}")
        if len(row) != width:
            raise bad("BAD_ROW", f"row {number} has {len(row)} values but there are {width} columns")


_SCAN_FROM = 256  # values in a request; below this, checking each value's type costs less than a body scan


def _inferred(rows: list[Any], width: int, source: bytes | None) -> np.ndarray | None:
    """Rows of plain JSON numbers as a float64 matrix, typed by numpy itself; None when it cannot tell.

    numpy reads integers and floats as numbers and anything else (text, null, objects, ragged rows) as
    another type or shape, except booleans, which it would quietly turn into 0 and 1: so this is used only
    for documents without a ``true`` or ``false`` anywhere in them.
    """
    if source is None or b"true" in source or b"false" in source:
        return None
    try:
        matrix = np.array(rows)
    except (ValueError, TypeError):
        return None
    if matrix.dtype.kind not in "fi" or matrix.shape != (len(rows), width):
        return None
    return matrix.astype(np.float64, copy=False)


def _matrix(
    schema: InputSchema,
    columns: list[str],
    rows: list[Any],
    finite: bool = False,
    source: bytes | None = None,
) -> np.ndarray:
    width = len(columns)
    if source is not None and len(rows) * width >= _SCAN_FROM:  # many JSON values: let numpy type them
        inferred = _inferred(rows, width, source)
        if inferred is not None:
            return _ordered_whole(schema, columns, inferred)
    if len(rows) == 1:  # the usual request: one row of plain JSON numbers
        row = rows[0]
        numbers = type(row) is list and len(row) == width and set(map(type, row)) <= _NUMBERS
    else:
        numbers = (
            all(type(row) is list and len(row) == width for row in rows)
            and set(map(type, chain.from_iterable(rows))) <= _NUMBERS
        )
    if not numbers:
        _check_row_shapes(rows, width)
        for number, row in enumerate(rows):
            for position, value in enumerate(row):
                kind = type(value)
                if kind is not float and kind is not int:
                    _reject_numeric(columns[position], number, value)  # CSV cells that read as numbers pass
    matrix = np.array(rows, dtype=np.float64)
    if not (finite and numbers):
        finite_cells = np.isfinite(matrix)
        if not finite_cells.all():
            row, position = (int(i) for i in np.argwhere(~finite_cells)[0])
            raise bad("WRONG_TYPE", f"column '{columns[position]}' row {row} is not a finite number")
    return _ordered_whole(schema, columns, matrix)


def _ordered_whole(schema: InputSchema, columns: list[str], matrix: np.ndarray) -> np.ndarray:
    """``matrix`` in the model's column order, its integer columns checked for fractions and range."""
    if columns != schema.names:
        order = [columns.index(name) for name in schema.names]
        matrix = matrix[:, order]
    if schema.integer_positions:
        whole = matrix[:, schema.integer_positions]
        if not np.equal(np.mod(whole, 1), 0).all():
            row, at = (int(i) for i in np.argwhere(np.mod(whole, 1) != 0)[0])
            name = schema.names[schema.integer_positions[at]]
            raise bad("WRONG_TYPE", f"column '{name}' row {row}: expected an integer, got a fraction")
        limits = schema.integer_limits
        outside = (whole < -limits) | (whole >= limits)
        if outside.any():
            row, at = (int(i) for i in np.argwhere(outside)[0])
            raise _out_of_range(schema.names[schema.integer_positions[at]], row, schema.integer_bits[at])
    return matrix


def _reject_numeric(column: str, row: int, value: Any) -> None:
    if isinstance(value, _CsvCell):
        try:
            number = float(value)
        except ValueError:
            raise bad("WRONG_TYPE", f"column '{column}' row {row}: expected a number, got text") from None
        if math.isfinite(number):
            return
        raise bad("WRONG_TYPE", f"column '{column}' row {row} is not a finite number")
    if value is None:
        raise bad("NULL_VALUE", f"column '{column}' row {row} is null; the model requires a value")
    raise bad("WRONG_TYPE", f"column '{column}' row {row}: expected a number, got {_kind(value)}")


def _frame(schema: InputSchema, columns: list[str], rows: list[Any]) -> Any:
    import pandas as pd

    _check_row_shapes(rows, len(columns))
    position = {name: i for i, name in enumerate(columns)}
    data: dict[str, Any] = {}
    for column in schema.columns or ():
        if column.name not in position:
            data[column.name] = [None] * len(rows)
            continue
        at = position[column.name]
        values = [_typed(column, number, row[at]) for number, row in enumerate(rows)]
        data[column.name] = _series(column, values)
    return pd.DataFrame(data, columns=schema.names)


def _series(column: Column, values: list[Any]) -> Any:
    import pandas as pd

    if column.type in INTEGER:
        return pd.array(values, dtype="Int64" if None in values else "int64")
    if column.type in {"double", "float"}:
        return np.array(
            [np.nan if v is None else v for v in values],
            dtype=np.float64 if column.type == "double" else np.float32,
        )
    if column.type == "boolean":
        return pd.array(values, dtype="boolean")
    if column.type == "datetime":
        return pd.to_datetime(values)
    return values


def _typed(column: Column, row: int, value: Any) -> Any:
    if value is None:
        if column.required:
            raise bad("NULL_VALUE", f"column '{column.name}' row {row} is null; the model requires a value")
        return None
    kind = column.type
    if isinstance(value, _CsvCell):
        return _from_csv(column, row, value)
    ok = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "double": isinstance(value, int | float) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "long": (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer()),
        "integer": (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer()),
        "datetime": isinstance(value, str),
        "binary": isinstance(value, str),
    }.get(kind, True)
    if not ok:
        raise bad(
            "WRONG_TYPE", f"column '{column.name}' row {row}: expected {_expected(kind)}, got {_kind(value)}"
        )
    if kind in INTEGER:
        return _whole(column, row, int(value))
    if kind == "datetime":
        return _datetime(column, row, value)
    if kind == "binary":
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise bad("WRONG_TYPE", f"column '{column.name}' row {row}: expected base64 text") from None
    return value


def _out_of_range(column: str, row: int, bits: int) -> RequestRejected:
    return bad("WRONG_TYPE", f"column '{column}' row {row}: expected an integer that fits in {bits} bits")


def _whole(column: Column, row: int, number: int) -> int:
    """``number`` when it fits the column's integer type (MLflow would fail on it otherwise)."""
    limit = 1 << (INTEGER_BITS[column.type] - 1)
    if not -limit <= number < limit:
        raise _out_of_range(column.name, row, INTEGER_BITS[column.type])
    return number


def _from_csv(column: Column, row: int, cell: str) -> Any:
    kind = column.type
    try:
        if kind in INTEGER:
            return _whole(column, row, int(cell))
        if kind in {"double", "float"}:
            return float(cell)
    except ValueError:
        raise bad(
            "WRONG_TYPE", f"column '{column.name}' row {row}: expected {_expected(kind)}, got text"
        ) from None
    if kind == "boolean":
        lowered = cell.lower()
        if lowered not in {"true", "false"}:
            raise bad("WRONG_TYPE", f"column '{column.name}' row {row}: expected true or false")
        return lowered == "true"
    return _typed(column, row, str(cell))


def _datetime(column: Column, row: int, value: str) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise bad(
            "WRONG_TYPE", f"column '{column.name}' row {row}: expected an ISO 8601 date and time"
        ) from None


def _expected(kind: str) -> str:
    return {
        "string": "text",
        "boolean": "a boolean",
        "double": "a number",
        "float": "a number",
        "long": "an integer",
        "integer": "an integer",
        "datetime": "a date and time",
        "binary": "base64 text",
    }.get(kind, kind)


def _untyped_frame(table: Table) -> Any:
    import pandas as pd

    if table.columns is None:
        return pd.DataFrame(table.rows)
    _check_row_shapes(table.rows, len(table.columns))
    if not all(isinstance(name, str) for name in table.columns):
        raise bad("BAD_COLUMN_NAME", "column names must be strings")
    return pd.DataFrame(table.rows, columns=table.columns)

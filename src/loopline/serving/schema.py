"""Scoring requests checked against a model's MLflow signature and turned into model input.

Plain functions, no web framework. Numeric signatures take a fast path straight to a float64 matrix;
anything else becomes a typed pandas DataFrame: an optional column may be null or absent, and the model
gets what it was trained on (a nullable ``Int64`` column with ``pd.NA``, a float column with NaN, a text
column with None). By default the checks follow MLflow's scoring server: unknown columns are ignored and
numeric text and booleans become numbers where MLflow converts them (never where MLflow would silently
corrupt a value: a fraction in an integer column, an integer beyond its type). ``strict`` refuses both.
Every refusal is a ``RequestRejected`` whose message names the column, row or limit and never repeats the
request's content.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

import numpy as np

from loopline.errors import RequestRejected
from loopline.serving.requests import CsvCell, Table, bad, csv_read_types, kind_of, parse_body

__all__ = [
    "FRACTIONAL",
    "TEXT",
    "Column",
    "InputSchema",
    "Table",
    "bad",
    "cast_to_tensor",
    "first_not_finite",
    "loose_name",
    "parse_body",
    "plain_columns",
    "to_model_input",
]

NUMERIC = frozenset({"double", "float", "long", "integer"})
INTEGER = frozenset({"long", "integer"})
FRACTIONAL = frozenset({"double", "float"})
TEXT = frozenset({"string"})
SCALARS = NUMERIC | {"string", "boolean", "binary", "datetime"}  # MLflow's DataType names
INTEGER_BITS = {"long": 64, "integer": 32}  # MLflow's long is an int64, its integer an int32
MAX_NAMES_SHOWN = 8


@dataclass(frozen=True)
class Column:
    """One input column of a signature."""

    name: str
    type: str
    required: bool = True
    missing: bool = False
    """The model takes a null here as a missing value (a booster in a float column, say): a null or NaN
    reaches it as NaN in a float column, as None in a text one."""

    @property
    def nullable(self) -> bool:
        """Whether a null (or NaN) in this column reaches the model rather than being refused."""
        return self.missing or not self.required


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in order; ``None`` columns means the model has no column signature.
    ``tensor`` is the NumPy type of a model whose signature is one unnamed tensor (fitted on an array):
    its columns are cast to it, as MLflow's scoring server does, before MLflow's own check. ``values``: a
    model without a signature that was logged with a list of plain values (texts) as its example takes one
    value a row, as a 1-D array, whatever the request's shape (a table of one column, say)."""

    columns: tuple[Column, ...] | None
    tensor: str | None = None
    values: bool = False
    names: list[str] = field(init=False, repr=False, compare=False)
    index: dict[str, int] = field(init=False, repr=False, compare=False)
    fast: bool = field(init=False, compare=False)
    missing: bool = field(init=False, compare=False)  # some column takes NaN as a missing value
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
        object.__setattr__(self, "missing", any(c.missing for c in columns))
        object.__setattr__(
            self, "integer_positions", tuple(i for i, c in enumerate(columns) if c.type in INTEGER)
        )
        object.__setattr__(
            self, "integer_bits", tuple(INTEGER_BITS[columns[i].type] for i in self.integer_positions)
        )
        object.__setattr__(
            self, "integer_limits", np.exp2(np.asarray(self.integer_bits, dtype=np.float64) - 1)
        )

    def taking_missing(self, kinds: Collection[str] = FRACTIONAL) -> InputSchema:
        """This schema for a model that takes a null as a missing value in its columns of ``kinds`` (its
        float columns, by default): those take nulls."""
        columns = self.columns or ()
        return InputSchema(
            tuple(replace(c, missing=c.missing or c.type in kinds) for c in columns) or None,
            self.tensor,
            self.values,
        )

    @classmethod
    def from_signature(cls, signature: Any) -> InputSchema:
        """The schema of an MLflow ``ModelSignature`` (or none when the model has no column signature)."""
        inputs = getattr(signature, "inputs", None)
        named: Any = getattr(inputs, "has_input_names", None)
        tensors: Any = getattr(inputs, "is_tensor_spec", None)
        if inputs is None or named is None or not named() or (tensors is not None and tensors()):
            # MLflow checks tensors and unnamed inputs itself
            specs = getattr(inputs, "inputs", None) or []
            single = tensors is not None and tensors() and len(specs) == 1 and not named()
            return cls(None, str(specs[0].type) if single else None)
        columns = []
        for spec in inputs.inputs:
            kind = getattr(spec, "type", None)
            name = getattr(kind, "name", None) or str(kind)
            columns.append(Column(str(spec.name), str(name).lower(), bool(getattr(spec, "required", True))))
        return cls(tuple(columns))


def plain_columns(inputs: Any) -> InputSchema | None:
    """The schema of a signature's inputs as ``MLmodel`` stores them (a JSON list of column specs), where
    every column is named and of a scalar type, as ``from_signature`` reads them; None otherwise (tensors,
    arrays, objects: read by MLflow's own classes)."""
    try:
        specs = json.loads(inputs) if isinstance(inputs, str) else None
    except ValueError:
        return None
    if not isinstance(specs, list) or not specs:
        return None
    columns = []
    for spec in specs:
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and spec.get("type") in SCALARS):
            return None
        columns.append(Column(spec["name"], spec["type"], bool(spec.get("required", True))))
    return InputSchema(tuple(columns))


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_NAMES_SHOWN else "")


def to_model_input(
    schema: InputSchema, table: Table, *, matrix: bool = True, strict: bool = False
) -> tuple[Any, int]:
    """The table checked against ``schema``: a float64 matrix (numeric, when ``matrix``) or a DataFrame."""
    rows = table.rows
    if not isinstance(rows, list):
        raise bad("BAD_INPUT", "the rows must be a list")
    if not rows:
        raise bad("EMPTY_INPUT", "there are no rows to score")
    if schema.columns is None:
        return _untyped_frame(table, schema), len(rows)
    given = table.columns
    if given is None and table.scalars and len(schema.columns) == 1:
        given = schema.names  # {"inputs": ["a text", ...]} to a model of one column, as MLflow takes it
    columns, keep = _request_columns(schema, given, strict)
    if keep is not None:  # columns the model does not take: left out, as MLflow does
        _check_row_shapes(rows, len(table.columns or ()))
        rows = [[row[i] for i in keep] for row in rows]
    if schema.fast and matrix:
        return _matrix(schema, columns, rows, strict, table.finite, table.source), len(rows)
    return _frame(schema, columns, rows, strict), len(rows)


def _column_name(schema: InputSchema, position: int, name: Any) -> str:
    """A request's column name as a string; integers only where the model's names are those digits."""
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise bad("BAD_COLUMN_NAME", f"column {position} has a name that is {kind_of(name)}; use strings")
    if isinstance(name, int):
        if str(name) not in schema.index:
            raise bad(
                "BAD_COLUMN_NAME",
                f"column {position} is named by the integer {name}; the model's columns are strings "
                f"({_names(schema.names)})",
            )
        return str(name)
    return name


def _request_columns(
    schema: InputSchema, given: list[Any] | None, strict: bool
) -> tuple[list[str], list[int] | None]:
    """The request's columns the model takes, and (when some must be left out) their positions."""
    names = schema.names
    if given == names:  # the usual case: the model's own columns, in its order
        return names, None
    if given is None:
        raise bad(
            "MISSING_COLUMNS",
            f"the model's columns have names ({_names(names)}); send them with the rows, e.g. "
            '{"dataframe_split": {"columns": [...], "data": [...]}} or {"input_data": {"columns": [...], '
            '"data": [...]}}',
        )
    columns = [_column_name(schema, position, name) for position, name in enumerate(given)]
    if len(set(columns)) != len(columns):
        duplicate = next(c for c in columns if columns.count(c) > 1)
        raise bad("DUPLICATE_COLUMN", f"column '{duplicate[:100]}' appears twice")
    unknown = [c for c in columns if c not in schema.index]
    if unknown and strict:
        raise bad("UNKNOWN_COLUMN", f"unknown column '{unknown[0][:100]}'; the model takes {_names(names)}")
    present = set(columns)
    missing = [c.name for c in schema.columns or () if c.required and c.name not in present]
    if missing:
        raise bad("MISSING_COLUMN", _missing(missing, unknown))
    if not unknown:
        return columns, None
    keep = [i for i, c in enumerate(columns) if c in schema.index]
    return [columns[i] for i in keep], keep


def _missing(missing: list[str], unknown: list[str]) -> str:
    """What a request lacks, and what it sent instead: a column of the request the model does not take
    that names a missing one in another case or spelling (``mean_radius`` for ``mean radius``), else
    those columns."""
    said = f"missing column '{missing[0][:100]}'" + (
        f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    )
    if not unknown:
        return said
    sent = {loose_name(name): name for name in unknown}
    near = [(sent[loose_name(name)], name) for name in missing if loose_name(name) in sent]
    if near:
        given, meant = near[0]
        more = f" (and {len(near) - 1} more named otherwise)" if len(near) > 1 else ""
        return (
            f"{said}: the request has '{given[:100]}' for the model's '{meant[:100]}'{more}; send the "
            "columns as the model's signature names them"
        )
    return f"{said}; the request's columns the model does not take: {_names([u[:100] for u in unknown])}"


def loose_name(name: str) -> str:
    """A column name without case, spaces, underscores, hyphens and dots: how two spellings are matched."""
    return "".join(c for c in name.casefold() if c not in " _-.")


_NUMBERS = frozenset({int, float})


def _check_row_shapes(rows: list[Any], width: int) -> None:
    if all(type(row) is list and len(row) == width for row in rows):
        return
    for number, row in enumerate(rows):
        if not isinstance(row, list):
            raise bad("BAD_ROW", f"row {number} must be a list of values, not {kind_of(row)}")
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
    strict: bool,
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
    checked = finite and numbers  # plain JSON numbers: no null, NaN or infinity among them
    missing = _missing_positions(schema, columns) if schema.missing and not checked else frozenset()
    if not numbers:
        _check_row_shapes(rows, width)
        rows = [
            [
                math.nan
                if value is None and position in missing
                else _number(columns[position], number, value, strict)
                for position, value in enumerate(row)
            ]
            for number, row in enumerate(rows)
        ]
    matrix = np.array(rows, dtype=np.float64)
    if not checked and (cell := first_not_finite(matrix, missing)) is not None:
        row, position = cell
        raise bad("WRONG_TYPE", f"column '{columns[position]}' row {row} is not a finite number")
    return _ordered_whole(schema, columns, matrix)


def _missing_positions(schema: InputSchema, columns: list[str]) -> frozenset[int]:
    """The positions among ``columns`` of those that take NaN as a missing value."""
    taking = schema.columns or ()
    return frozenset(i for i, name in enumerate(columns) if taking[schema.index[name]].missing)


def first_not_finite(matrix: np.ndarray, missing: Collection[int] = ()) -> tuple[int, int] | None:
    """The (row, column) position of the first NaN or infinity in ``matrix`` (only infinity in the
    ``missing`` columns, which take NaN as a missing value), or None."""
    finite = np.isfinite(matrix)
    if missing:
        finite[:, list(missing)] |= np.isnan(matrix[:, list(missing)])
    if finite.all():
        return None
    row, position = (int(i) for i in np.argwhere(~finite)[0])
    return row, position


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


def _number(column: str, row: int, value: Any, strict: bool) -> float:
    """A cell of a numeric column as a float: numbers as they are; numeric text (always in CSV, else unless
    ``strict``) and booleans (unless ``strict``) converted, as MLflow does."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if value is None:
        raise bad("NULL_VALUE", f"column '{column}' row {row} is null; the model requires a value")
    if isinstance(value, str) and (isinstance(value, CsvCell) or not strict):
        try:
            return float(value)
        except ValueError:
            raise bad("WRONG_TYPE", f"column '{column}' row {row}: expected a number, got text") from None
    if isinstance(value, bool) and not strict:
        return float(value)
    raise bad("WRONG_TYPE", f"column '{column}' row {row}: expected a number, got {kind_of(value)}")


def _frame(schema: InputSchema, columns: list[str], rows: list[Any], strict: bool) -> Any:
    import pandas as pd

    _check_row_shapes(rows, len(columns))
    position = {name: i for i, name in enumerate(columns)}
    data: dict[str, Any] = {}
    for column in schema.columns or ():
        if column.name not in position:
            data[column.name] = _series(column, [None] * len(rows))
            continue
        at = position[column.name]
        values = [_typed(column, number, row[at], strict) for number, row in enumerate(rows)]
        data[column.name] = _series(column, values)
    return pd.DataFrame(data, columns=schema.names)


def _series(column: Column, values: list[Any]) -> Any:
    import pandas as pd

    if column.type in INTEGER:
        nullable = None in values
        if column.type == "long":
            return pd.array(values, dtype="Int64" if nullable else "int64")
        return pd.array(values, dtype="Int32" if nullable else "int32")
    if column.type in FRACTIONAL:
        return np.array(
            [np.nan if v is None else v for v in values],
            dtype=np.float64 if column.type == "double" else np.float32,
        )
    if column.type == "boolean":
        return pd.array(values, dtype="boolean") if None in values else np.array(values, dtype=bool)
    if column.type == "datetime":
        try:
            return pd.to_datetime(values)
        except (ValueError, TypeError):  # each value parsed; together they mix time zones
            offsets = sorted({str(v.tzinfo) if v is not None and v.tzinfo else "none" for v in values})
            raise bad(
                "WRONG_TYPE",
                f"column '{column.name}': its dates and times mix time zone offsets ({', '.join(offsets)}); "
                "send them all with one offset, or all without",
            ) from None
    return pd.Series(values, dtype=object)


def _typed(column: Column, row: int, value: Any, strict: bool) -> Any:
    if value is None:
        if not column.nullable:
            raise bad("NULL_VALUE", f"column '{column.name}' row {row} is null; the model requires a value")
        return None
    if isinstance(value, CsvCell):
        return _from_csv(column, row, value)
    if column.type in NUMERIC:
        return _typed_number(column, row, value, strict)
    return _typed_other(column, row, value, strict)


def _typed_number(column: Column, row: int, value: Any, strict: bool) -> Any:
    number = _number(column.name, row, value, strict)
    if column.type not in INTEGER:
        return number if isinstance(value, str | bool) else value
    if not math.isfinite(number) or not number.is_integer():
        raise bad("WRONG_TYPE", f"column '{column.name}' row {row}: expected an integer, got a fraction")
    return _whole(column, row, value if type(value) is int else int(number))


def _typed_other(column: Column, row: int, value: Any, strict: bool) -> Any:
    kind = column.type
    converted = _converted(kind, value) if not strict else None
    if converted is not None:
        return converted
    ok = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "datetime": isinstance(value, str),
        "binary": isinstance(value, str),
    }.get(kind, True)
    if not ok:
        raise bad(
            "WRONG_TYPE",
            f"column '{column.name}' row {row}: expected {_expected(kind)}, got {kind_of(value)}",
        )
    if kind == "datetime":
        return _datetime(column, row, value)
    if kind == "binary":
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise bad("WRONG_TYPE", f"column '{column.name}' row {row}: expected base64 text") from None
    return value


def _converted(kind: str, value: Any) -> Any:
    """What MLflow's scoring accepts in a text or boolean column as that type; None when nothing applies."""
    if kind == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "string" and isinstance(value, int | float):
        return str(value)
    if kind == "boolean" and isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if kind == "boolean" and type(value) is int and value in (0, 1):
        return bool(value)
    return None


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
        if kind in FRACTIONAL:
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
    return _typed(column, row, str(cell), True)


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


def _untyped_frame(table: Table, schema: InputSchema) -> Any:
    """The rows for a model without column names, as MLflow's server hands them to it."""
    import pandas as pd

    tensor = schema.tensor
    if (table.scalars and tensor is None) or (
        schema.values and all(type(row) is list and len(row) == 1 for row in table.rows)
    ):
        # a list of values, one a row, to a model without a signature: a 1-D array, as MLflow's server
        # hands it (a text pipeline fitted on a Series of texts takes nothing else); and a table of one
        # column (the held-out rows validation sends, say) to a model logged with a list of values
        return np.array([row[0] for row in table.rows])
    if table.columns is None:
        frame = pd.DataFrame(table.rows)
    else:
        _check_row_shapes(table.rows, len(table.columns))
        # A model without column names (one fitted on an array) takes its columns by position; Azure ML's
        # samples and pandas name them 0, 1, 2, as MLflow's server accepts.
        if not all(isinstance(name, str | int) and not isinstance(name, bool) for name in table.columns):
            raise bad(
                "BAD_COLUMN_NAME", "column names must be strings (or integers, for a model without names)"
            )
        if table.csv and (refused := unnamed_header(table.columns, tensor)) is not None:
            raise bad("BAD_CSV", refused)
        frame = pd.DataFrame(table.rows, columns=table.columns)
    if tensor is None:
        return csv_read_types(frame) if table.csv else frame
    # by position from here: MLflow hands the model an array, and monitoring samples one column set
    # whichever names a client gave (a CSV header, Azure ML's 0, 1, 2, none)
    return cast_to_tensor(frame, tensor).set_axis(range(len(frame.columns)), axis=1)


def unnamed_header(columns: Sequence[Any], tensor: str | None) -> str | None:
    """Why the column names given to a model without names are a row of values (``header_of_numbers``),
    with how to name them; None where they may be names."""
    from loopline.storage.datastores import header_of_numbers

    hint = header_of_numbers(columns)
    if hint is None:
        return None
    if tensor is None:
        return f"the input's {hint}"
    positions = ",".join(str(i) for i in range(min(len(columns), 4))) + (",..." if len(columns) > 4 else "")
    return f"the input's {hint} (the model takes its columns by position: {positions})"


def cast_to_tensor(frame: Any, tensor: str) -> Any:
    """``frame``'s columns as the NumPy type ``tensor`` of a model fitted on an array, as MLflow's scoring
    server casts them (integers to floats, say); a column that does not convert is a ``WRONG_TYPE``."""
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if len(column) and isinstance(column.iloc[0], list):
            continue  # a cell of several values: MLflow's check shapes it
        try:
            converted = column.astype(tensor)
            # an integer tensor takes whole numbers in its range only, never a fraction cut short
            whole = np.dtype(tensor).kind not in "iu" or np.array_equal(
                converted.to_numpy(dtype=np.float64), column.to_numpy(dtype=np.float64)
            )
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise bad("WRONG_TYPE", f"column {name!r}: the model takes {tensor} values only")
        frame.isetitem(position, converted)
    return frame

"""Scoring request bodies read into tables: Azure ML's ``input_data``, MLflow's JSON formats, CSV, Parquet.

Plain functions, no web framework. What is accepted follows MLflow's own scoring server by default (one
input field among any others, ``params`` passed on, a UTF-8 charset only), and Azure ML's documented
``input_data`` shapes on ``/score``; an endpoint created ``strict`` also refuses unknown fields. Every
refusal is a ``RequestRejected`` whose message names the field and never repeats the request's content.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from loopline.domain import LLM_KEYS, llm_request
from loopline.errors import RequestRejected
from loopline.storage.dialect import SAMPLE_BYTES, dialect, from_decimal_comma

__all__ = [
    "INVOCATION_KEYS",
    "SCORE_KEYS",
    "CsvCell",
    "Table",
    "bad",
    "csv_read_types",
    "kind_of",
    "parse_body",
]

SCORE_KEYS = ("input_data", "data")  # data: the rows Azure ML's own score.py samples take
INVOCATION_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_MEDIA = "application/json"
CSV_MEDIA = "text/csv"
PARQUET_MEDIA = "application/vnd.apache.parquet"


def bad(code: str, message: str, status: int = 400) -> RequestRejected:
    """A client error with its code."""
    return RequestRejected(status, code, message)


def kind_of(value: Any) -> str:
    """What a JSON value is, in words (never the value itself)."""
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


@dataclass
class Table:
    """A request's input as column names and rows, before it is checked against a schema.

    ``columns`` is None for rows given without column names (a list of lists).
    """

    columns: list[Any] | None
    rows: list[Any]
    finite: bool = False  # every number came from orjson, which never yields NaN or infinity
    source: bytes | None = field(default=None, repr=False)  # the JSON document the rows were read from
    params: dict[str, Any] | None = None
    scalars: bool = False  # the rows came as a list of values, one a row (a model of one column takes it)
    csv: bool = False  # the columns are a CSV body's header line
    document: dict[str, Any] | None = None  # a language model's request (LLM_KEYS), as it came; no rows


class CsvCell(str):
    """A CSV cell: text that the schema may read as a number."""

    __slots__ = ()


_COMPRESSED = (b"gzip", b"x-gzip", b"deflate")  # zlib reads either wrapping (gzip's or RFC 9110's deflate)


def decoded(encoding: bytes, body: bytes, limit: int) -> bytes:
    """``body`` as its ``Content-Encoding`` (gzip, deflate) says to uncompress it, inflated no further than
    ``limit`` bytes: a small body that inflates past it is refused as a large one."""
    import zlib

    name = encoding.strip().lower()
    if name in (b"", b"identity"):
        return body
    shown = name.decode("latin-1")[:40]
    if name not in _COMPRESSED:
        raise bad(
            "UNSUPPORTED_ENCODING",
            f"Content-Encoding '{shown}' is not supported; send the body uncompressed, or compressed with "
            "gzip or deflate",
            415,
        )
    reader = zlib.decompressobj(32 + zlib.MAX_WBITS)
    try:
        plain = reader.decompress(body, limit + 1)
    except zlib.error:
        plain = b""
    if len(plain) > limit:
        raise bad(
            "TOO_LARGE",
            f"the request body, uncompressed, is larger than the limit of {limit} bytes "
            "(serving.max_body_bytes in loopline.yaml)",
            413,
        )
    if not reader.eof or reader.unused_data:
        raise bad(
            "BAD_ENCODING", f"the body is not one complete {shown} stream, as its Content-Encoding says"
        )
    return plain


def _media(route: str, content_type: str) -> str:
    """The request's media type; 415 for another type, a charset other than UTF-8 or an unknown parameter."""
    if content_type == JSON_MEDIA:
        return JSON_MEDIA
    media, *parameters = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    accepted = (JSON_MEDIA,) if route == "score" else (JSON_MEDIA, CSV_MEDIA, PARQUET_MEDIA)
    if media not in accepted:
        got = media[:60] or "no Content-Type"
        elsewhere = (  # a table's body is MLflow's route's, beside this one
            "; a CSV or Parquet body goes to the endpoint's /invocations, as MLflow's server takes it"
            if route == "score" and media in (CSV_MEDIA, PARQUET_MEDIA)
            else ""
        )
        raise bad(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type must be {' or '.join(accepted)} (got {got}){elsewhere}",
            415,
        )
    for parameter in filter(None, parameters):
        name, _, value = parameter.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"').lower()
        if name == "format":  # MLflow 1's clients: format=pandas-split or pandas-records, the rows unwrapped
            raise bad(
                "UNSUPPORTED_MEDIA_TYPE",
                f"'format={value[:40]}' is MLflow 1's scoring protocol, which MLflow 2's server refuses too; "
                'send \'application/json\' with the rows under a key: {"dataframe_split": {"columns": '
                '[...], "data": [...]}} or {"dataframe_records": [...]}',
                415,
            )
        if name != "charset":
            raise bad(
                "UNSUPPORTED_MEDIA_TYPE",
                f"unknown Content-Type parameter '{name[:40]}'; send '{media}' or '{media}; charset=utf-8'",
                415,
            )
        if value != "utf-8":
            raise bad("UNSUPPORTED_CHARSET", f"the body must be UTF-8 (got charset={value[:40]})", 415)
    return media


def parse_body(route: str, content_type: str, body: bytes, *, strict: bool = False) -> Table:
    """The body of a ``score`` or ``invocations`` request as a table."""
    media = _media(route, content_type)
    if not body:
        raise bad("EMPTY_BODY", "the request body is empty; send the input as JSON (or CSV to /invocations)")
    if media == CSV_MEDIA:
        return _parse_csv(body)
    if media == PARQUET_MEDIA:
        return _parse_parquet(body)
    return _parse_json(route, body, strict)


def _parse_json(route: str, body: bytes, strict: bool) -> Table:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _parsed_again(route, body, strict, exc)
    return _parsed_document(route, document, body, strict)


def _parsed_again(route: str, body: bytes, strict: bool, failed: orjson.JSONDecodeError) -> Table:
    """A body orjson refused, read as Python's json reads it: recoded to UTF-8 when it came with a byte
    order mark or in UTF-16/32 (read once more; a body of marks alone stays refused), with NaN and
    Infinity where it holds them; else the refusal, where orjson found the fault."""
    recoded = _as_utf8(body)
    if recoded is not None:
        body = recoded
        try:
            return _parsed_document(route, orjson.loads(body), body, strict)
        except orjson.JSONDecodeError as exc:
            failed = exc
    if b"NaN" not in body and b"Infinity" not in body:
        raise bad(
            "BAD_JSON",
            f"the request body is not valid JSON ({str(failed).split(':', 1)[0]} at byte {failed.pos})",
        ) from None
    return _parsed_document(route, _with_nan(body), None, strict)


def _as_utf8(body: bytes) -> bytes | None:
    """A JSON body that begins with a byte order mark, or is UTF-16 or UTF-32, as UTF-8 without the mark (as
    Python's ``json.loads``, and so MLflow's server, reads bytes); None for any other body."""
    import json

    encoding = json.detect_encoding(body)
    if encoding == "utf-8":
        return None
    try:
        return body.decode(encoding).encode()
    except UnicodeDecodeError:
        return None


def _parsed_document(route: str, document: Any, body: bytes | None, strict: bool) -> Table:
    if not isinstance(document, dict):
        wrap = ""
        if isinstance(document, list) and document and isinstance(document[0], dict):  # records, bare
            wrap = (
                '; put the records in {"input_data": [...]}'
                if route == "score"
                else ('; put the records in {"dataframe_records": [...]}')
            )
        raise bad("BAD_INPUT", f"the request body must be a JSON object, not {kind_of(document)}{wrap}")
    keys = SCORE_KEYS if route == "score" else INVOCATION_KEYS
    if len(document) == 1:  # the usual case: only the input
        key = next(iter(document))
        if key in keys:
            return _parsed(_TABLE_PARSERS[key](document[key]), body, None)
    if route == "invocations" and llm_request(document):  # before a table's fields
        return Table(None, [], document=document)
    present = [key for key in keys if key in document]
    if strict and (unknown := sorted(set(document) - set(keys) - {"params"})):
        raise bad(
            "BAD_INPUT",
            f"unknown field '{str(unknown[0])[:100]}' in the request; expected {' or '.join(keys)}",
        )
    if len(present) != 1:
        what = "exactly one of " + ", ".join(keys) if len(keys) > 1 else f"the field '{keys[0]}'"
        raise bad("BAD_INPUT", f"the request must have {what}{_other_route(route, document, present)}")
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise bad("BAD_PARAMS", f"'params' must be an object of name: value, not {kind_of(params)}")
    return _parsed(_TABLE_PARSERS[present[0]](document[present[0]]), body, params)


def _other_route(route: str, document: dict[str, Any], present: list[str]) -> str:
    """Where a request of the other route's format goes: MLflow's fields to ``invocations``, Azure ML's
    ``input_data`` to ``score``; nothing where it holds either or none."""
    other = (*INVOCATION_KEYS, *LLM_KEYS) if route == "score" else ("input_data",)
    found = [key for key in other if key in document]
    if present or not found:
        return ""
    owner, path = ("MLflow", "invocations") if route == "score" else ("Azure ML", "score")
    return f"; '{found[0]}' is {owner}'s format, which the endpoint's /{path} path takes"


def _parsed(table: Table, body: bytes | None, params: dict[str, Any] | None) -> Table:
    table.finite = True
    table.source = body
    table.params = params
    return table


def _not_infinite(name: str) -> Any:
    raise bad("BAD_JSON", f"the request holds {name}, which no column takes; send a finite number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        _not_infinite(f"the number {text[:40]}")
    return number


def _int(text: str) -> int | float:
    number = int(text)  # as orjson reads it: beyond 64 bits, a float
    return number if -(2**63) <= number < 2**64 else _finite(text)


def _constant(name: str) -> None:
    if name != "NaN":
        _not_infinite(name)
    return None  # a missing value: a column the model requires refuses it by name (schema.py)


def _with_nan(body: bytes) -> Any:
    """A document with bare ``NaN`` values, as Python's ``json.dumps`` writes a missing number (MLflow's
    own scoring client, Azure ML's sample clients) and MLflow's server reads: each NaN is read as a null.
    Only for documents orjson refused, so the usual request never pays for Python's parser."""
    try:
        document = json.loads(
            body.decode("utf-8"), parse_constant=_constant, parse_float=_finite, parse_int=_int
        )
        orjson.dumps(document)  # text orjson would refuse (a lone surrogate) is refused here too
    except UnicodeDecodeError as exc:
        raise bad("BAD_JSON", f"the request body is not valid JSON (not UTF-8 at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise bad(
            "BAD_JSON", f"the request body is not valid JSON ({exc.msg}: character {exc.pos})"
        ) from None
    except (RecursionError, orjson.JSONEncodeError):
        raise bad(
            "BAD_JSON", "the request body is not valid JSON (nested too deep, or not UTF-8 text)"
        ) from None
    return document


_SPLIT_FIELDS = frozenset({"columns", "data", "index"})


def _split(value: Any, field_name: str) -> Table:
    if type(value) is dict and len(value) == 2:  # the usual case: {"columns": [...], "data": [...]}
        columns, data = value.get("columns"), value.get("data")
        if type(columns) is list and type(data) is list:
            return Table(columns, data)
    if not isinstance(value, dict):
        raise bad(
            "BAD_INPUT", f"'{field_name}' must be an object with 'columns' and 'data', not {kind_of(value)}"
        )
    if not value.keys() <= _SPLIT_FIELDS:
        extra = sorted(set(value) - _SPLIT_FIELDS)
        raise bad(
            "BAD_INPUT",
            f"unknown field '{field_name}.{str(extra[0])[:100]}'; expected columns, data and index",
        )
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


def _score_input(value: Any) -> Table:
    """Azure ML's ``input_data``: split (columns, index, data), a list of rows, or named tensors; or a list
    of records (objects of column: value), which nothing else can mean."""
    if isinstance(value, list):
        return _instances(value, "input_data")  # records, rows, or plain values (texts), one a row
    if isinstance(value, dict) and ("data" in value or "columns" in value) and value.keys() <= _SPLIT_FIELDS:
        return _split(value, "input_data")
    if isinstance(value, dict):
        return _columnar(value, "input_data")
    raise bad("BAD_INPUT", f"'input_data' must be an object with 'columns' and 'data', not {kind_of(value)}")


def _records(value: Any, field_name: str) -> Table:
    if not isinstance(value, list):
        raise bad("BAD_INPUT", f"'{field_name}' must be a list of records, not {kind_of(value)}")
    if not value:
        return Table([], [])
    if not all(isinstance(record, dict) for record in value):
        row = next(i for i, record in enumerate(value) if not isinstance(record, dict))
        raise bad("BAD_INPUT", f"'{field_name}' row {row} must be an object of column: value")
    columns = list(value[0])
    names = set(columns)
    if any(
        record.keys() != names for record in value
    ):  # records with other keys: the union, nulls where absent
        columns = list(dict.fromkeys(name for record in value for name in record))
        return Table(columns, [[record.get(name) for name in columns] for record in value])
    return Table(columns, [[record[name] for name in columns] for record in value])


def _instances(value: Any, field_name: str = "instances") -> Table:
    if isinstance(value, dict):
        return _columnar(value, field_name)
    if not isinstance(value, list):
        raise bad("BAD_INPUT", f"'{field_name}' must be a list, not {kind_of(value)}")
    if _all_records(value):
        return _records(value, field_name)
    if value and not any(isinstance(item, list | dict) for item in value):
        return Table(None, [[item] for item in value], scalars=True)
    return Table(None, value)


def _columnar(value: dict[str, Any], field_name: str) -> Table:
    lists = list(value.values())
    if not all(isinstance(column, list) for column in lists):
        raise bad("BAD_INPUT", f"'{field_name}' as an object must map each column to a list of values")
    lengths = {len(column) for column in lists}
    if len(lengths) > 1:
        raise bad("BAD_INPUT", f"the columns of '{field_name}' have different lengths")
    return Table(list(value), [list(row) for row in zip(*lists, strict=True)])


def _score_rows(value: Any) -> Table:
    """``{"data": [[...], ...]}``, as clients of a custom ``score.py`` send it: rows by position (or
    records, objects of column: value)."""
    if isinstance(value, list) and _all_records(value):
        return _records(value, "data")
    if not isinstance(value, list):
        raise bad("BAD_INPUT", f"'data' must be a list of rows (lists of values), not {kind_of(value)}")
    if not all(isinstance(row, list) for row in value):
        row = next(i for i, item in enumerate(value) if not isinstance(item, list))
        raise bad("BAD_INPUT", f"'data' row {row} must be a list of values, not {kind_of(value[row])}")
    return Table(None, value)


def _all_records(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(item, dict) for item in value)


_TABLE_PARSERS: dict[str, Callable[[Any], Table]] = {
    "input_data": _score_input,
    "data": _score_rows,
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
    found = dialect(text[:SAMPLE_BYTES], ",", whole=len(text) <= SAMPLE_BYTES)  # ';' as Excel writes it
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=found.get("sep", ",")))
    except csv.Error as exc:
        raise bad("BAD_CSV", f"the CSV body cannot be read ({exc})") from None
    rows = [row for row in rows if row]
    if not rows:
        raise bad("EMPTY_INPUT", "the CSV body has no header row")
    value = _decimal_comma_value if "decimal" in found else _csv_value
    return Table(rows[0], [[value(cell) for cell in row] for row in rows[1:]], csv=True)


# The texts pandas' read_csv reads as booleans.
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def csv_read_types(frame: Any) -> Any:
    """A CSV body's columns typed as pandas' ``read_csv`` types them, as MLflow's server reads a CSV for a
    model without a signature: numbers where every value is one (whole ones as integers where none is
    missing), booleans where every value is ``True`` or ``False``, texts otherwise."""
    import pandas as pd

    for name in frame.columns:
        values = frame[name]
        present = values.dropna()
        if present.empty:
            continue
        try:
            frame[name] = pd.to_numeric(values.map(lambda v: None if v is None else str(v)))
            continue
        except (ValueError, TypeError):  # not numbers: booleans, or texts
            pass
        if present.isin(list(_BOOLEANS)).all() and len(present) == len(values):
            frame[name] = values.map(_BOOLEANS).astype(bool)
        else:
            frame[name] = values.map(lambda v: None if v is None else str(v))
    return frame


def _csv_value(cell: str) -> Any:
    return None if cell == "" else CsvCell(cell)


def _decimal_comma_value(cell: str) -> Any:
    return None if cell == "" else CsvCell(from_decimal_comma(cell))


def _parse_parquet(body: bytes) -> Table:
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises many kinds for a body that is not Parquet
        raise bad("BAD_PARQUET", f"the body is not a Parquet file ({type(exc).__name__})") from None
    values = frame.astype(object).where(frame.notna(), None)
    return Table([str(name) for name in frame.columns], values.to_numpy().tolist())

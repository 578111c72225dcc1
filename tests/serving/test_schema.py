"""Scoring requests against a signature: every client mistake is a named 4xx that never echoes input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loopline.errors import RequestRejected
from loopline.serving.schema import Column, InputSchema, Table, parse_body, to_model_input

NUMERIC = InputSchema((Column("a", "double"), Column("b", "double"), Column("n", "long")))
MIXED = InputSchema(
    (Column("x", "double"), Column("name", "string"), Column("flag", "boolean", required=False))
)


def score(
    body: object,
    route: str = "score",
    schema: InputSchema = NUMERIC,
    content_type: str = "application/json",
    strict: bool = False,
) -> tuple[object, int]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return to_model_input(schema, parse_body(route, content_type, raw, strict=strict), strict=strict)


def rejected(
    body: object,
    route: str = "score",
    schema: InputSchema = NUMERIC,
    content_type: str = "application/json",
    strict: bool = False,
) -> RequestRejected:
    with pytest.raises(RequestRejected) as error:
        score(body, route, schema, content_type, strict)
    return error.value


def test_azure_split_input_becomes_a_float_matrix() -> None:
    matrix, rows = score(
        {"input_data": {"columns": ["a", "b", "n"], "index": [0, 1], "data": [[1, 2.5, 3], [4, 5, 6]]}}
    )
    assert rows == 2
    assert isinstance(matrix, np.ndarray) and matrix.dtype == np.float64
    assert matrix.tolist() == [[1, 2.5, 3], [4, 5, 6]]


@pytest.mark.parametrize("field", ["input_data", "data"])
def test_records_on_the_azure_route_are_read_by_their_names(field: str) -> None:
    """A list of objects of column: value can mean nothing but records, wherever rows go."""
    matrix, rows = score({field: [{"n": 3, "a": 1, "b": 2}, {"a": 4, "b": 5, "n": 6}]})
    assert rows == 2 and matrix.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("route", "wrapper"),
    [("score", '{"input_data": [...]}'), ("invocations", '{"dataframe_records": [...]}')],
)
def test_records_sent_bare_are_told_the_wrapper_their_route_takes(route: str, wrapper: str) -> None:
    refused = rejected([{"a": 1, "b": 2, "n": 3}], route)
    assert (
        refused.message == f"the request body must be a JSON object, not a list; put the records in {wrapper}"
    )
    assert (
        rejected({"data": [[1, 2, 3], "x"]}, "score").message
        == "'data' row 1 must be a list of values, not a string"
    )


def test_columns_in_another_order_are_put_in_the_models_order() -> None:
    matrix, _ = score({"input_data": {"columns": ["n", "a", "b"], "data": [[3, 1, 2]]}})
    assert matrix.tolist() == [[1, 2, 3]]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["a", "b", "n"], "data": [[1, 2, 3]]}},
        {"dataframe_records": [{"a": 1, "b": 2, "n": 3}]},
        {"instances": [{"a": 1, "b": 2, "n": 3}]},
        {"inputs": {"a": [1], "b": [2], "n": [3]}},
        {"inputs": [{"a": 1, "b": 2, "n": 3}]},
    ],
)
def test_every_mlflow_input_format_is_understood(body: dict[str, object]) -> None:
    matrix, rows = score(body, route="invocations")
    assert rows == 1 and matrix.tolist() == [[1, 2, 3]]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1, 2, 3]]},
        {"inputs": [[1, 2, 3]]},
        {"dataframe_split": {"data": [[1, 2, 3]]}},
    ],
)
def test_rows_without_column_names_are_refused_for_a_model_with_named_columns(body: object) -> None:
    error = rejected(body, route="invocations")
    assert error.error_code == "MISSING_COLUMNS" and "(a, b, n)" in error.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"input_data": {"columns": ["a", "b", "n", "zz"], "data": [[1, 2, 3, "x"]]}}, [[1, 2, 3]]),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1, "2.5", "3"]]}}, [[1, 2.5, 3]]),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[True, 2, False]]}}, [[1, 2, 0]]),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1, 2, 3]]}, "extra": {"id": 7}}, [[1, 2, 3]]),
        ({"input_data": [[1, 2, 3]]}, None),
    ],
)
def test_by_default_requests_are_read_as_mlflow_reads_them(body: object, expected: object) -> None:
    if expected is None:  # Azure ML's list of rows is only for models without column names
        assert rejected(body).error_code == "MISSING_COLUMNS"
        return
    matrix, _ = score(body)
    assert matrix.tolist() == expected


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (
            {"input_data": {"columns": ["a", "b", "n", "zz"], "data": [[1, 2, 3, 4]]}},
            "UNKNOWN_COLUMN",
            "'zz'",
        ),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1, "2", 3]]}}, "WRONG_TYPE", "got a string"),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1, True, 3]]}}, "WRONG_TYPE", "got a boolean"),
        ({"input_data": {"columns": ["a"], "data": [[1]]}, "extra": 1}, "BAD_INPUT", "unknown field 'extra'"),
    ],
)
def test_a_strict_endpoint_refuses_what_mlflow_would_ignore_or_convert(
    body: object, code: str, needle: str
) -> None:
    error = rejected(body, strict=True)
    assert error.error_code == code and needle in error.message


def test_csv_is_accepted_on_invocations() -> None:
    matrix, rows = score(b"a,b,n\n1,2.5,3\n4,5,6\n", route="invocations", content_type="text/csv")
    assert rows == 2 and matrix.tolist() == [[1, 2.5, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("body", "code", "status", "needle"),
    [
        (b"{not json", "BAD_JSON", 400, "not valid JSON"),
        (b"", "EMPTY_BODY", 400, "empty"),
        (
            {"input_data": {"columns": ["a", "b"], "data": [[1, 2]]}},
            "MISSING_COLUMN",
            400,
            "missing column 'n'",
        ),
        (
            {"input_data": {"columns": ["a", "b", "N"], "data": [[1, 2, 3]]}},
            "MISSING_COLUMN",
            400,
            "missing column 'n': the request has 'N' for the model's 'n'; send the columns as the model's "
            "signature names them",
        ),
        (
            {"input_data": {"columns": ["a", "b", "count"], "data": [[1, 2, 3]]}},
            "MISSING_COLUMN",
            400,
            "missing column 'n'; the request's columns the model does not take: count",
        ),
        (
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, "two", 3]]}},
            "WRONG_TYPE",
            400,
            "column 'b' row 0: expected a number, got text",
        ),
        (
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, [2], 3]]}},
            "WRONG_TYPE",
            400,
            "column 'b' row 0: expected a number, got a list",
        ),
        (
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, 2, None]]}},
            "NULL_VALUE",
            400,
            "column 'n' row 0 is null",
        ),
        (
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, 2, 3.5]]}},
            "WRONG_TYPE",
            400,
            "expected an integer",
        ),
        (
            {"input_data": {"columns": [0, 1, 2], "data": [[1, 2, 3]]}},
            "BAD_COLUMN_NAME",
            400,
            "named by the integer 0",
        ),
        (
            {"input_data": {"columns": ["a", "a", "n"], "data": [[1, 2, 3]]}},
            "DUPLICATE_COLUMN",
            400,
            "appears twice",
        ),
        (
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, 2]]}},
            "BAD_ROW",
            400,
            "row 0 has 2 values but there are 3 columns",
        ),
        ({"input_data": {"columns": ["a", "b", "n"], "data": []}}, "EMPTY_INPUT", 400, "no rows"),
        ({"wrong": 1}, "BAD_INPUT", 400, "the request must have exactly one of input_data, data"),
        (
            {"dataframe_records": [{"a": 1}]},
            "BAD_INPUT",
            400,
            "exactly one of input_data, data; 'dataframe_records' is MLflow's format, which the endpoint's "
            "/invocations path takes",
        ),
        ([1, 2], "BAD_INPUT", 400, "must be a JSON object"),
    ],
)
def test_client_mistakes_get_a_named_4xx(body: object, code: str, status: int, needle: str) -> None:
    error = rejected(body)
    assert (error.error_code, error.http_status) == (code, status)
    assert needle in error.message


def test_azure_ml_s_input_data_sent_to_mlflow_s_path_is_told_the_path_that_takes_it() -> None:
    error = rejected({"input_data": [[1, 2, 3]]}, route="invocations")
    assert (error.error_code, error.message) == (
        "BAD_INPUT",
        "the request must have exactly one of dataframe_split, dataframe_records, instances, inputs; "
        "'input_data' is Azure ML's format, which the endpoint's /score path takes",
    )


def test_wrong_content_type_is_415_with_the_fix() -> None:
    error = rejected({"input_data": {"data": [[1, 2, 3]]}}, content_type="application/x-www-form-urlencoded")
    assert error.http_status == 415
    assert error.message == "Content-Type must be application/json (got application/x-www-form-urlencoded)"
    # a table's body, sent to loopline's JSON route: MLflow's route beside it takes it
    for media in ("text/csv", "application/vnd.apache.parquet"):
        error = rejected({"input_data": {"data": [[1, 2, 3]]}}, content_type=media)
        assert (error.http_status, error.message) == (
            415,
            f"Content-Type must be application/json (got {media}); a CSV or Parquet body goes to the "
            "endpoint's /invocations, as MLflow's server takes it",
        )


def test_messages_never_repeat_the_payload() -> None:
    secret = "s3cr3t-" * 5000
    assert (
        "s3cr3t"
        not in rejected({"input_data": {"columns": ["a", "b", "n"], "data": [[1, secret, 3]]}}).message
    )
    assert "s3cr3t" not in rejected(("{" + secret).encode()).message
    assert (
        "s3cr3t"
        not in rejected(
            {"input_data": {"columns": ["a", "b", "n"], "data": [[1, 2]] * 3 + [[secret]]}}
        ).message
    )
    # An unknown column is named (that is the point), but never at length.
    assert len(rejected({"input_data": {"columns": [secret, "a", "b"], "data": [[1, 2, 3]]}}).message) < 300


def test_mixed_types_become_a_typed_frame_with_optional_nulls() -> None:
    frame, rows = score(
        {"dataframe_records": [{"x": 1.5, "name": "a", "flag": None}, {"x": 2, "name": "b", "flag": True}]},
        route="invocations",
        schema=MIXED,
    )
    assert rows == 2
    assert list(frame.columns) == ["x", "name", "flag"]
    assert frame["x"].tolist() == [1.5, 2.0]
    strict = rejected(
        {"dataframe_records": [{"x": 1, "name": 7}]}, route="invocations", schema=MIXED, strict=True
    )
    assert strict.message == "column 'name' row 0: expected text, got an integer"
    frame, _ = score({"dataframe_records": [{"x": 1, "name": 7}]}, route="invocations", schema=MIXED)
    assert frame["name"].tolist() == ["7"]


def test_missing_optional_columns_are_allowed() -> None:
    frame, _ = score({"dataframe_records": [{"x": 1.0, "name": "a"}]}, route="invocations", schema=MIXED)
    assert frame["flag"].isna().all()


def test_rows_without_names_are_refused_for_a_model_with_named_columns() -> None:
    error = rejected({"input_data": {"data": [[1, 2, 3]]}})
    assert error.error_code == "MISSING_COLUMNS"
    with pytest.raises(RequestRejected):
        to_model_input(NUMERIC, Table(None, [[1, 2, 3]]))


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "1e400"])
def test_csv_cells_that_are_not_finite_numbers_are_refused(cell: str) -> None:
    error = rejected(f"a,b,n\n1,{cell},3\n".encode(), route="invocations", content_type="text/csv")
    assert (error.http_status, error.error_code) == (400, "WRONG_TYPE")
    assert "column 'b' row 0 is not a finite number" in error.message


def test_json_numbers_beyond_doubles_are_refused_as_bad_json() -> None:
    error = rejected(b'{"input_data": {"columns": ["a", "b", "n"], "data": [[1, 1e400, 3]]}}')
    assert (error.http_status, error.error_code) == (400, "BAD_JSON")


def test_rows_not_parsed_from_json_are_checked_for_nan() -> None:
    with pytest.raises(RequestRejected) as error:
        to_model_input(NUMERIC, Table(["a", "b", "n"], [[1.0, float("nan"), 3]]))
    assert error.value.error_code == "WRONG_TYPE"


def many_rows(bad_row: object = None, at: int = 150, count: int = 200) -> list[object]:
    """``count`` good rows of (a, b, n), with ``bad_row`` in place of row ``at`` when given."""
    rows: list[object] = [[i * 0.5, i, i * 2] for i in range(count)]
    if bad_row is not None:
        rows[at] = bad_row
    return rows


def test_a_large_request_reads_the_same_as_its_rows_one_by_one() -> None:
    rows = many_rows()
    matrix, count = score(
        {"input_data": {"columns": ["b", "n", "a"], "data": [[r[1], r[2], r[0]] for r in rows]}}
    )
    one_by_one = [score({"input_data": {"columns": ["a", "b", "n"], "data": [row]}})[0] for row in rows]
    assert count == 200 and matrix.dtype == np.float64
    assert matrix.tolist() == np.concatenate(one_by_one).tolist()


@pytest.mark.parametrize(
    ("bad_row", "code", "needle"),
    [
        ([1, "two", 3], "WRONG_TYPE", "column 'b' row 150: expected a number, got text"),
        ([1, {"b": 2}, 3], "WRONG_TYPE", "column 'b' row 150: expected a number, got an object"),
        ([1, 2, None], "NULL_VALUE", "column 'n' row 150 is null"),
        ([1, 2, 3.5], "WRONG_TYPE", "column 'n' row 150: expected an integer"),
        ([1, 2], "BAD_ROW", "row 150 has 2 values but there are 3 columns"),
        ([1, [2], 3], "WRONG_TYPE", "column 'b' row 150: expected a number, got a list"),
        ({"a": 1}, "BAD_ROW", "row 150 must be a list of values, not an object"),
    ],
)
def test_one_bad_row_in_a_large_request_is_named(bad_row: object, code: str, needle: str) -> None:
    error = rejected({"input_data": {"columns": ["a", "b", "n"], "data": many_rows(bad_row)}})
    assert (error.error_code, error.http_status) == (code, 400)
    assert needle in error.message


def test_a_boolean_in_a_large_request_is_refused_even_where_a_name_says_true() -> None:
    schema = InputSchema((Column("true_share", "double"), Column("b", "double"), Column("n", "long")))
    columns = ["true_share", "b", "n"]
    matrix, _ = score({"input_data": {"columns": columns, "data": many_rows()}}, schema=schema)
    assert matrix.tolist() == np.array(many_rows(), dtype=np.float64).tolist()
    body = {"input_data": {"columns": columns, "data": many_rows([0.5, False, 1])}}
    error = rejected(body, schema=schema, strict=True)
    assert error.error_code == "WRONG_TYPE" and "got a boolean" in error.message
    converted, _ = score(body, schema=schema)  # as MLflow reads it: a boolean is 0 or 1
    assert converted[150].tolist() == [0.5, 0.0, 1.0]


WITH_TEXT = InputSchema(
    (Column("x", "double"), Column("n", "long"), Column("i", "integer"), Column("s", "string"))
)
NUMBERS_ONLY = InputSchema((Column("x", "double"), Column("n", "long"), Column("i", "integer")))


@pytest.mark.parametrize("schema", [WITH_TEXT, NUMBERS_ONLY], ids=["data-frame", "matrix"])
@pytest.mark.parametrize(
    ("n", "i", "needle"),
    [
        (2**63, 1, "column 'n' row 0: expected an integer that fits in 64 bits"),
        (10**30, 1, "column 'n' row 0: expected an integer that fits in 64 bits"),
        (1e30, 1, "column 'n' row 0: expected an integer that fits in 64 bits"),
        (-(2**64), 1, "column 'n' row 0: expected an integer that fits in 64 bits"),
        (1, 2**31, "column 'i' row 0: expected an integer that fits in 32 bits"),
        (1, -(2**31) - 1, "column 'i' row 0: expected an integer that fits in 32 bits"),
    ],
)
def test_integers_beyond_their_columns_type_are_refused(
    schema: InputSchema, n: float, i: int, needle: str
) -> None:
    columns = [column.name for column in schema.columns or ()]
    row: list[object] = [0.5, n, i, "a"][: len(columns)]
    error = rejected({"input_data": {"columns": columns, "data": [row]}}, schema=schema)
    assert (error.error_code, error.message) == ("WRONG_TYPE", needle)
    assert str(n) not in error.message and str(i) not in error.message


@pytest.mark.parametrize("schema", [WITH_TEXT, NUMBERS_ONLY], ids=["data-frame", "matrix"])
def test_the_extremes_of_each_integer_type_are_accepted(schema: InputSchema) -> None:
    columns = [column.name for column in schema.columns or ()]
    rows: list[list[object]] = [
        [0.5, -(2**63), -(2**31), "a"][: len(columns)],
        [0.5, 2**53, 2**31 - 1, "b"][: len(columns)],
    ]
    data, count = score({"input_data": {"columns": columns, "data": rows}}, schema=schema)
    assert count == 2
    values = data[["n", "i"]].to_numpy().tolist() if schema is WITH_TEXT else data[:, 1:].tolist()
    assert values == [[-(2**63), -(2**31)], [2**53, 2**31 - 1]]


def test_csv_integers_beyond_their_type_are_refused() -> None:
    error = rejected(
        b"x,n,i,s\n0.5,1,2147483648,a\n", route="invocations", schema=WITH_TEXT, content_type="text/csv"
    )
    assert (error.error_code, error.message) == (
        "WRONG_TYPE",
        "column 'i' row 0: expected an integer that fits in 32 bits",
    )


@pytest.mark.parametrize(
    ("tensor", "data", "taken"),
    [
        ("float64", [[1, 2], [3, 4]], [[1.0, 2.0], [3.0, 4.0]]),
        ("int64", [[1, 2.0], [3, 4]], [[1, 2], [3, 4]]),
        ("int64", [[1, 2.5], [3, 4]], None),
        ("int32", [[1, 2], [3, 2**40]], None),
        ("float64", [[1, "high"], [3, 4]], None),
    ],
    ids=["ints-for-floats", "whole-floats-for-ints", "fraction-for-ints", "beyond-int32", "text"],
)
def test_a_model_fitted_on_an_array_takes_columns_by_position_converted_to_its_type(
    tensor: str, data: list[list[object]], taken: list[list[object]] | None
) -> None:
    schema = InputSchema(None, tensor)
    body = {"input_data": {"columns": [0, 1], "index": [0, 1], "data": data}}
    if taken is None:
        error = rejected(body, schema=schema)
        assert (error.error_code, error.message) == (
            "WRONG_TYPE",
            f"column 1: the model takes {tensor} values only",
        )
        return
    frame, rows = score(body, schema=schema)
    assert rows == 2 and list(frame.columns) == [0, 1] and frame.to_numpy().tolist() == taken
    assert {str(t) for t in frame.dtypes} == {tensor}


@pytest.mark.parametrize("tensor", ["float32", None], ids=["tensor-signature", "no-signature"])
def test_a_csv_without_a_header_line_is_refused_for_a_model_without_names_not_scored_a_row_short(
    tensor: str | None,
) -> None:
    """``numpy.savetxt`` writes no header: the first row, read as the header, would be lost silently."""
    schema = InputSchema(None, tensor)
    error = rejected(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "invocations", schema, "text/csv")
    by_position = " (the model takes its columns by position: 0,1,2,3)" if tensor else ""
    assert (error.error_code, error.message) == (
        "BAD_CSV",
        "the input's header holds numbers (5.1, 3.5, 1.4, 0.2), not column names: the first line of a CSV "
        "file is its header, so a file without one loses its first row; write a header line first"
        + by_position,
    )
    # a header naming the columns by position (as pandas names an array's), or by anything but numbers
    for header in (b"0,1,2,3", b"sepal_length,sepal_width,petal_length,petal_width"):
        frame, rows = score(
            header + b"\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "invocations", schema, "text/csv"
        )
        assert rows == 2 and np.allclose(np.asarray(frame, dtype=float)[1], [6.7, 3.0, 5.2, 2.3])


NAN_ROW = b'{"dataframe_split": {"columns": ["a", "b", "n"], "data": [[NaN, 2, 3]]}}'


def test_a_bare_nan_as_python_s_json_writes_a_missing_number_is_a_null() -> None:
    # json.dumps (MLflow's own client, Azure ML's sample clients) writes NaN, which MLflow's server reads
    refused = rejected(NAN_ROW, "invocations")
    assert refused.error_code == "NULL_VALUE" and "column 'a' row 0 is null" in refused.message
    matrix, _ = score(NAN_ROW, "invocations", NUMERIC.taking_missing())
    assert np.isnan(matrix[0, 0]) and matrix[0, 1:].tolist() == [2, 3]
    frame, _ = score(b'{"dataframe_records": [{"x": 1.5, "name": "NaN", "flag": NaN}]}', "invocations", MIXED)
    assert frame.loc[0, "name"] == "NaN" and frame["flag"].isna().all()  # text that reads NaN stays text
    assert rejected(b'{"dataframe_records": [{"x": NaN, "name": "a"}]}', "invocations", MIXED).error_code == (
        "NULL_VALUE"
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"inputs": [[Infinity, 2, 3]]}', "Infinity"),
        (b'{"inputs": [[-Infinity, 2, 3]]}', "-Infinity"),
        (b'{"inputs": [[NaN, 1e400, 3]]}', "the number 1e400"),
        (b'{"inputs": [[NaN, -1e999, 3]]}', "the number -1e999"),
    ],
)
def test_infinity_is_refused_by_name_even_for_a_model_that_takes_missing_values(
    body: bytes, named: str
) -> None:
    refused = rejected(body, "invocations", NUMERIC.taking_missing())
    assert refused.error_code == "BAD_JSON" and f"the request holds {named}," in refused.message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"inputs": [[NaN, 2, }', "Expecting value: character 21"),
        (b'{"inputs": [[NaN, "\\ud800", 3]]}', "not UTF-8 text"),
        (b'{"inputs": [[NaN, "\xff", 3]]}', "not UTF-8 at byte 19"),
        (b'{"inputs": [NaN, ' + b"[" * 50_000 + b"]" * 50_000 + b"]}", "nested too deep"),
        (b'{"inputs": ["NaN]}', "Unterminated string starting at: character 12"),
    ],
)
def test_a_body_with_nan_that_is_not_json_otherwise_is_told_where(body: bytes, says: str) -> None:
    refused = rejected(body, "invocations", NUMERIC.taking_missing())
    assert refused.error_code == "BAD_JSON" and says in refused.message, refused.message


def test_a_model_taking_missing_values_gets_nan_for_nulls_in_its_float_columns_only() -> None:
    schema = NUMERIC.taking_missing()
    assert schema.missing and not NUMERIC.missing
    matrix, _ = score({"inputs": {"a": [None, 1.0], "b": [2.0, None], "n": [3, 4]}}, "invocations", schema)
    assert np.isnan(matrix[0, 0]) and np.isnan(matrix[1, 1]) and matrix[:, 2].tolist() == [3, 4]
    csv = score(b"a,b,n\n,2,3\nNaN,2,3\n", "invocations", schema, "text/csv")[0]
    assert np.isnan(csv[:, 0]).all()
    refused = rejected({"inputs": [{"a": 1.0, "b": 2.0, "n": None}]}, "invocations", schema)
    assert refused.error_code == "NULL_VALUE" and "column 'n' row 0" in refused.message  # an integer column
    refused = rejected(b"a,b,n\ninf,2,3\n", "invocations", schema, "text/csv")
    assert refused.error_code == "WRONG_TYPE" and "column 'a' row 0 is not a finite number" in refused.message


def test_mlflow_1_s_format_parameter_is_refused_with_mlflow_2_s_request() -> None:
    refused = rejected(
        {"columns": ["a"], "data": [[1]]}, "invocations", content_type="application/json; format=pandas-split"
    )
    assert (
        refused.http_status == 415
        and "'format=pandas-split' is MLflow 1's scoring protocol" in refused.message
    )
    assert '{"dataframe_split": {"columns": [...], "data": [...]}}' in refused.message


def test_dates_and_times_in_one_offset_are_read_and_a_mix_of_offsets_is_refused_by_name() -> None:
    timed = InputSchema((Column("signup_at", "datetime"), Column("visits", "long")))
    frame, _ = score(
        {"dataframe_split": {"columns": ["signup_at", "visits"], "data": [["2026-02-03T14:00:00", 3]]}},
        route="invocations",
        schema=timed,
    )
    assert frame["signup_at"].dt.hour.tolist() == [14]
    frame, _ = score(
        {"dataframe_records": [{"signup_at": "2026-02-03T14:00:00Z", "visits": 3}] * 2},
        route="invocations",
        schema=timed,
    )
    assert str(frame["signup_at"].dt.tz) == "UTC"
    mixed = rejected(
        {
            "dataframe_records": [
                {"signup_at": "2026-02-03T14:00:00Z", "visits": 3},
                {"signup_at": "2026-02-03T14:00:00+02:00", "visits": 3},
            ]
        },
        route="invocations",
        schema=timed,
    )
    assert (mixed.http_status, mixed.error_code) == (400, "WRONG_TYPE")
    assert mixed.message == (
        "column 'signup_at': its dates and times mix time zone offsets (UTC, UTC+02:00); send them all with "
        "one offset, or all without"
    )

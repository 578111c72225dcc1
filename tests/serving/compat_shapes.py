"""Scoring request shapes, from what MLflow's scoring server and its tests accept and refuse.

Each case is (name, model, content type, body), sent to ``/invocations``. ``numeric`` is a scikit-learn
regression over columns a (double), b (double), n (long); ``typed`` a Python model over name (string,
optional), age (long, optional), score (double, optional), active (boolean), with a parameter offset
(double, 0.0 by default); ``matrix`` a scikit-learn
regression fitted on a NumPy array of three columns, as most tutorials train (a tensor signature: no
column names, Azure ML's samples name the columns 0, 1, 2); ``labels`` a scikit-learn classifier over the
columns of ``numeric`` answering text labels, ``booster`` an XGBoost regressor over them answering
float32; ``text`` a scikit-learn pipeline over one text column, review; ``bare-text`` and
``tensor-text`` a text pipeline fitted on a Series of texts, without a signature and with a 1-D tensor
one; ``dated`` a Python model over a date and time and a number; ``imputed`` a pipeline that imputes
its columns first (age, fare, port), without an input example; ``encoded`` a pipeline one-hot encoding
its plan (basic, pro, team) with a strict encoder, beside a tenure; ``formula`` a statsmodels OLS fitted by
the formula ``price ~ area + C(district)`` (districts north, south, centre); ``unsigned`` a Python model
logged without a signature over a number n and a boolean flag.
``DIFFERENCES`` lists where loopline answers with another status than MLflow on purpose;
docs/endpoints.md lists the same cases.
"""

from __future__ import annotations

import json
from typing import Any

J = "application/json"
N = ["a", "b", "n"]
ROW = [1.0, 2.0, 3]
T = ["name", "age", "score", "active"]
TROW = ["ann", 30, 0.5, True]
RECORD = dict(zip(N, ROW, strict=True))
TRECORD = dict(zip(T, TROW, strict=True))
M = [1.0, 2.0, 3.0]
NAN = float("nan")
INF = float("inf")


def j(value: Any) -> bytes:
    """A JSON body."""
    return json.dumps(value).encode()


SHAPES = [
    # numeric model: the usual shapes
    ("split", "numeric", J, j({"dataframe_split": {"columns": N, "data": [ROW]}})),
    ("split-two-rows", "numeric", J, j({"dataframe_split": {"columns": N, "data": [ROW, [0.0, 0.0, 0]]}})),
    (
        "split-reordered",
        "numeric",
        J,
        j({"dataframe_split": {"columns": ["n", "b", "a"], "data": [[3, 2.0, 1.0]]}}),
    ),
    ("split-index", "numeric", J, j({"dataframe_split": {"columns": N, "index": [7], "data": [ROW]}})),
    # a file saved with a byte order mark (Windows' editors, PowerShell), or in UTF-16: json.loads reads both
    ("split-bom", "numeric", J, b"\xef\xbb\xbf" + j({"dataframe_split": {"columns": N, "data": [ROW]}})),
    (
        "split-utf-16",
        "numeric",
        J,
        json.dumps({"dataframe_split": {"columns": N, "data": [ROW]}}).encode("utf-16"),
    ),
    ("split-no-columns", "numeric", J, j({"dataframe_split": {"data": [ROW]}})),
    (
        "split-extra-column",
        "numeric",
        J,
        j({"dataframe_split": {"columns": [*N, "x"], "data": [[*ROW, 9.0]]}}),
    ),
    (
        "split-missing-column",
        "numeric",
        J,
        j({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}),
    ),
    ("split-data-not-list", "numeric", J, j({"dataframe_split": {"columns": N, "data": 5}})),
    ("split-not-object", "numeric", J, j({"dataframe_split": [ROW]})),
    ("split-ragged", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0]]}})),
    ("records", "numeric", J, j({"dataframe_records": [RECORD]})),
    ("records-extra-key", "numeric", J, j({"dataframe_records": [{**RECORD, "x": 1}]})),
    ("records-missing-key", "numeric", J, j({"dataframe_records": [{"a": 1.0, "b": 2.0}]})),
    ("records-not-list", "numeric", J, j({"dataframe_records": RECORD})),
    ("records-empty", "numeric", J, j({"dataframe_records": []})),
    ("instances-records", "numeric", J, j({"instances": [RECORD]})),
    ("instances-columnar", "numeric", J, j({"instances": {"a": [1.0], "b": [2.0], "n": [3]}})),
    ("instances-lists", "numeric", J, j({"instances": [ROW]})),
    ("inputs-records", "numeric", J, j({"inputs": [RECORD]})),
    ("inputs-columnar", "numeric", J, j({"inputs": {"a": [1.0, 4.0], "b": [2.0, 5.0], "n": [3, 6]}})),
    ("inputs-lists", "numeric", J, j({"inputs": [ROW]})),
    ("inputs-scalar-list", "numeric", J, j({"inputs": [1.0, 2.0, 3.0]})),
    (
        "extra-top-level-key",
        "numeric",
        J,
        j({"dataframe_split": {"columns": N, "data": [ROW]}, "meta": {"id": 1}}),
    ),
    ("params", "numeric", J, j({"dataframe_split": {"columns": N, "data": [ROW]}, "params": {"k": 1}})),
    (
        "two-formats",
        "numeric",
        J,
        j({"dataframe_split": {"columns": N, "data": [ROW]}, "inputs": [RECORD]}),
    ),
    ("no-format", "numeric", J, j({"data": [ROW]})),
    ("top-level-list", "numeric", J, j([ROW])),
    ("top-level-number", "numeric", J, b"5"),
    ("bad-json", "numeric", J, b'{"dataframe_split": '),
    ("empty-body", "numeric", J, b""),
    ("not-utf8", "numeric", J, b'{"dataframe_split": "\xff"}'),
    ("numeric-strings", "numeric", J, j({"dataframe_split": {"columns": N, "data": [["1.5", "2", 3]]}})),
    ("text-in-double", "numeric", J, j({"dataframe_split": {"columns": N, "data": [["abc", 2.0, 3]]}})),
    ("bool-in-double", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[True, 2.0, 3]]}})),
    ("null-in-double", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[None, 2.0, 3]]}})),
    ("int-in-double", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1, 2, 3]]}})),
    ("fraction-in-long", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, 3.5]]}})),
    ("whole-float-in-long", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, 3.0]]}})),
    (
        "numeric-string-in-long",
        "numeric",
        J,
        j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, "3"]]}}),
    ),
    ("bool-in-long", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, True]]}})),
    ("huge-long", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, 2**64 + 5]]}})),
    ("null-in-long", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[1.0, 2.0, None]]}})),
    ("list-in-cell", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[[1.0], 2.0, 3]]}})),
    ("object-in-cell", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[{"v": 1}, 2.0, 3]]}})),
    ("charset-utf8", "numeric", J + "; charset=utf-8", j({"dataframe_split": {"columns": N, "data": [ROW]}})),
    (
        "charset-UTF8-upper",
        "numeric",
        J + "; charset=UTF-8",
        j({"dataframe_split": {"columns": N, "data": [ROW]}}),
    ),
    (
        "charset-latin1",
        "numeric",
        J + "; charset=latin-1",
        j({"dataframe_split": {"columns": N, "data": [ROW]}}),
    ),
    (
        "unknown-parameter",
        "numeric",
        J + "; format=pandas-split",
        j({"dataframe_split": {"columns": N, "data": [ROW]}}),
    ),
    ("text-plain", "numeric", "text/plain", j({"dataframe_split": {"columns": N, "data": [ROW]}})),
    ("no-content-type", "numeric", "", j({"dataframe_split": {"columns": N, "data": [ROW]}})),
    ("csv", "numeric", "text/csv", b"a,b,n\n1.0,2.0,3\n"),
    ("csv-charset", "numeric", "text/csv; charset=utf-8", b"a,b,n\n1.0,2.0,3\n4,5,6\n"),
    ("csv-reordered", "numeric", "text/csv", b"n,a,b\n3,1.0,2.0\n"),
    ("csv-extra-column", "numeric", "text/csv", b"a,b,n,x\n1.0,2.0,3,zz\n"),
    ("csv-missing-column", "numeric", "text/csv", b"a,b\n1.0,2.0\n"),
    ("csv-text-in-number", "numeric", "text/csv", b"a,b,n\nabc,2.0,3\n"),
    ("csv-header-only", "numeric", "text/csv", b"a,b,n\n"),
    ("csv-empty", "numeric", "text/csv", b""),
    ("csv-fraction-in-long", "numeric", "text/csv", b"a,b,n\n1.0,2.0,3.5\n"),
    ("csv-not-utf8", "numeric", "text/csv", b"a,b,n\n\xff,2.0,3\n"),
    ("csv-semicolons", "numeric", "text/csv", b"a;b;n\n1.0;2.0;3\n"),
    ("csv-decimal-commas", "numeric", "text/csv", b"a;b;n\n1,5;2,0;3\n4;0,5;6\n"),
    # typed model: text, optional nullable integer and float, boolean
    ("typed-split", "typed", J, j({"dataframe_split": {"columns": T, "data": [TROW]}})),
    ("typed-records", "typed", J, j({"dataframe_records": [TRECORD]})),
    (
        "typed-optional-null-long",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", None, 0.5, True]]}}),
    ),
    (
        "typed-optional-null-double",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", 30, None, True]]}}),
    ),
    (
        "typed-optional-null-string",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [[None, 30, 0.5, True]]}}),
    ),
    (
        "typed-optional-absent",
        "typed",
        J,
        j({"dataframe_split": {"columns": ["name", "active"], "data": [["ann", True]]}}),
    ),
    (
        "typed-required-absent",
        "typed",
        J,
        j({"dataframe_split": {"columns": ["name", "age", "score"], "data": [["ann", 30, 0.5]]}}),
    ),
    (
        "typed-required-null",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", 30, 0.5, None]]}}),
    ),
    (
        "typed-number-in-string",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [[5, 30, 0.5, True]]}}),
    ),
    (
        "typed-string-bool",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", 30, 0.5, "true"]]}}),
    ),
    ("typed-int-bool", "typed", J, j({"dataframe_split": {"columns": T, "data": [["ann", 30, 0.5, 1]]}})),
    (
        "typed-numeric-string-long",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", "30", 0.5, True]]}}),
    ),
    (
        "typed-fraction-long",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", 30.5, 0.5, True]]}}),
    ),
    ("typed-extra-column", "typed", J, j({"dataframe_split": {"columns": [*T, "x"], "data": [[*TROW, 1]]}})),
    (
        "typed-nulls-several-rows",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [TROW, ["bo", None, None, False]]}}),
    ),
    ("typed-csv", "typed", "text/csv", b"name,age,score,active\nann,30,0.5,true\n"),
    ("typed-csv-nulls", "typed", "text/csv", b"name,age,score,active\nann,,,true\n"),
    ("typed-instances-lists", "typed", J, j({"instances": [TROW]})),
    # typed model's parameter, offset (a double): given, of another type, and one it does not declare
    ("typed-params", "typed", J, j({"dataframe_records": [TRECORD], "params": {"offset": 2.0}})),
    ("typed-params-whole-number", "typed", J, j({"dataframe_records": [TRECORD], "params": {"offset": 2}})),
    ("typed-params-text", "typed", J, j({"dataframe_records": [TRECORD], "params": {"offset": "x"}})),
    ("typed-params-list", "typed", J, j({"dataframe_records": [TRECORD], "params": {"offset": [1.0]}})),
    ("typed-params-undeclared", "typed", J, j({"dataframe_records": [TRECORD], "params": {"bogus": 1}})),
    # matrix model: a tensor of three doubles, no names
    ("matrix-split-int-columns", "matrix", J, j({"dataframe_split": {"columns": [0, 1, 2], "data": [M]}})),
    (
        "matrix-split-int-columns-index",
        "matrix",
        J,
        j({"dataframe_split": {"columns": [0, 1, 2], "index": [0, 1], "data": [M, M]}}),
    ),
    (
        "matrix-split-text-columns",
        "matrix",
        J,
        j({"dataframe_split": {"columns": ["0", "1", "2"], "data": [M]}}),
    ),
    ("matrix-split-no-columns", "matrix", J, j({"dataframe_split": {"data": [M]}})),
    ("matrix-split-ints", "matrix", J, j({"dataframe_split": {"columns": [0, 1, 2], "data": [[1, 2, 3]]}})),
    ("matrix-split-narrow", "matrix", J, j({"dataframe_split": {"columns": [0, 1], "data": [[1.0, 2.0]]}})),
    (
        "matrix-split-text",
        "matrix",
        J,
        j({"dataframe_split": {"columns": [0, 1, 2], "data": [["a", 2.0, 3.0]]}}),
    ),
    (
        "matrix-split-null",
        "matrix",
        J,
        j({"dataframe_split": {"columns": [0, 1, 2], "data": [[None, 2.0, 3.0]]}}),
    ),
    ("matrix-records", "matrix", J, j({"dataframe_records": [{"0": 1.0, "1": 2.0, "2": 3.0}]})),
    ("matrix-instances", "matrix", J, j({"instances": [M, M]})),
    ("matrix-inputs", "matrix", J, j({"inputs": [M]})),
    ("matrix-inputs-narrow", "matrix", J, j({"inputs": [[1.0, 2.0]]})),
    ("matrix-csv", "matrix", "text/csv", b"0,1,2\n1.0,2.0,3.0\n"),
    # as numpy.savetxt writes it: no header line (MLflow reads no CSV for a tensor signature; loopline would
    # read the first row as the header and lose it)
    ("matrix-csv-no-header", "matrix", "text/csv", b"1.0,2.0,3.0\n4.0,5.0,6.0\n"),
    # answers other than float64: text labels, and an XGBoost regressor's float32
    ("labels-split", "labels", J, j({"dataframe_split": {"columns": N, "data": [ROW, [4.0, 0.9, 4]]}})),
    ("labels-records", "labels", J, j({"dataframe_records": [RECORD]})),
    ("labels-csv", "labels", "text/csv", b"a,b,n\n1.0,2.0,3\n4.0,0.9,4\n"),
    ("booster-split", "booster", J, j({"dataframe_split": {"columns": N, "data": [ROW, [2.5, 0.3, 2]]}})),
    ("booster-instances", "booster", J, j({"instances": [RECORD]})),
    # a model of one text column (a text classifier): a list of texts is its column, as MLflow takes it
    ("texts-inputs", "text", J, j({"inputs": ["loved the story", "a dull waste"]})),
    ("texts-instances", "text", J, j({"instances": ["loved the story", "a dull waste"]})),
    ("texts-columnar", "text", J, j({"inputs": {"review": ["loved the story", "a dull waste"]}})),
    ("texts-records", "text", J, j({"instances": [{"review": "loved the story"}]})),
    ("texts-split", "text", J, j({"dataframe_split": {"columns": ["review"], "data": [["superb"]]}})),
    ("texts-one-string", "text", J, j({"inputs": "loved the story"})),
    ("texts-numbers", "text", J, j({"inputs": [1.5, 2.5]})),
    # a text classifier fitted on a Series of texts, without a signature or with a 1-D tensor one: MLflow
    # hands it the texts as a 1-D array
    ("bare-texts-inputs", "bare-text", J, j({"inputs": ["loved the story", "a dull waste"]})),
    ("bare-texts-instances", "bare-text", J, j({"instances": ["loved the story", "a dull waste"]})),
    ("bare-texts-one-string", "bare-text", J, j({"inputs": "loved the story"})),
    (
        "bare-texts-named-column",
        "bare-text",
        J,
        j({"dataframe_split": {"columns": ["review"], "data": [["superb"], ["a dull waste"]]}}),
    ),
    ("tensor-texts-inputs", "tensor-text", J, j({"inputs": ["loved the story", "a dull waste"]})),
    ("tensor-texts-instances", "tensor-text", J, j({"instances": ["superb music", "boring plot"]})),
    ("tensor-texts-split", "tensor-text", J, j({"dataframe_split": {"data": [["superb"], ["dull"]]}})),
    (
        "tensor-texts-records",
        "tensor-text",
        J,
        j({"dataframe_records": [{"review": "superb"}, {"review": "dull"}]}),
    ),
    ("tensor-texts-csv", "tensor-text", "text/csv", b"review\nsuperb\ndull\n"),
    # dates and times: without an offset, as the model was trained on them, and with one (JavaScript's
    # toISOString writes ...Z), which its signature's dates do not take
    ("dated-records", "dated", J, j({"dataframe_records": [{"when": "2026-02-03T14:00:00", "n": 1.0}]})),
    ("dated-offset", "dated", J, j({"dataframe_records": [{"when": "2026-02-03T14:00:00Z", "n": 1.0}]})),
    # a pipeline that imputes first, without an input example: nulls in its float and text columns
    ("imputed-nulls", "imputed", J, j({"dataframe_records": [{"age": None, "fare": 7.0, "port": None}]})),
    ("imputed-csv-empties", "imputed", "text/csv", b"age,fare,port\n,7.25,\n38,71.3,C\n"),
    (
        "imputed-nan",
        "imputed",
        J,
        j({"dataframe_split": {"columns": ["age", "fare", "port"], "data": [[NAN, 7.0, "S"]]}}),
    ),
    # a strict encoder: a plan it knows, and one it was not fitted on (both servers refuse it as the client's)
    ("encoded-known", "encoded", J, j({"dataframe_records": [{"plan": "pro", "tenure": 5.0}]})),
    (
        "encoded-unseen",
        "encoded",
        J,
        j({"dataframe_records": [{"plan": "pro", "tenure": 5.0}, {"plan": "enterprise", "tenure": 2.0}]}),
    ),
    # a formula's categorical factor: a district it knows, and one it was not fitted on (a client error)
    ("formula-known", "formula", J, j({"dataframe_records": [{"area": 70.0, "district": "south"}]})),
    (
        "formula-unseen",
        "formula",
        J,
        j({"dataframe_records": [{"area": 70.0, "district": "north"}, {"area": 90.0, "district": "east"}]}),
    ),
    # a model without a signature: a CSV's columns as pandas reads them (numbers, booleans), as JSON's
    ("unsigned-csv", "unsigned", "text/csv", b"n,flag\n1.5,True\n2,False\n4,true\n"),
    ("unsigned-csv-semicolons", "unsigned", "text/csv", b"n;flag\n1,5;True\n"),
    ("unsigned-records", "unsigned", J, j({"dataframe_records": [{"n": 1.5, "flag": True}]})),
    # MLflow 1's protocol: the rows unwrapped, their orientation in the Content-Type
    ("mlflow1-pandas-split", "numeric", J + "; format=pandas-split", j({"columns": N, "data": [ROW]})),
    ("mlflow1-pandas-records", "numeric", J + "; format=pandas-records", j([RECORD])),
    # bare NaN and Infinity, as Python's json.dumps writes a missing or infinite number (MLflow's own client
    # sends them so, and Azure ML's sample clients json.dumps their rows)
    ("nan-required", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[NAN, 2.0, 3]]}})),
    ("nan-records", "numeric", J, j({"dataframe_records": [{**RECORD, "b": NAN}]})),
    ("nan-booster", "booster", J, j({"dataframe_split": {"columns": N, "data": [[NAN, 2.0, 3]]}})),
    (
        "nan-optional-double",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", 30, NAN, True]]}}),
    ),
    (
        "nan-optional-long",
        "typed",
        J,
        j({"dataframe_split": {"columns": T, "data": [["ann", NAN, 0.5, True]]}}),
    ),
    ("nan-matrix", "matrix", J, j({"instances": [[NAN, 2.0, 3.0]]})),
    ("infinity", "numeric", J, j({"dataframe_split": {"columns": N, "data": [[INF, 2.0, 3]]}})),
    (
        "minus-infinity-booster",
        "booster",
        J,
        j({"dataframe_split": {"columns": N, "data": [[-INF, 2.0, 3]]}}),
    ),
]

# name: (MLflow's status, loopline's status, why)
DIFFERENCES: dict[str, tuple[int, int, str]] = {
    "fraction-in-long": (200, 400, "MLflow truncates 3.5 to 3 in an integer column; loopline refuses"),
    "typed-fraction-long": (200, 400, "MLflow truncates 30.5 to 30 in an integer column; loopline refuses"),
    "no-content-type": (500, 415, "MLflow fails on a body without a Content-Type; loopline names it"),
    "typed-optional-null-long": (400, 200, "a null in an optional integer column: loopline scores it"),
    "typed-nulls-several-rows": (400, 200, "nulls in optional integer columns: loopline scores them"),
    "typed-csv-nulls": (400, 200, "empty CSV cells in optional integer columns: loopline scores them"),
    "typed-required-null": (200, 400, "a null in a required column: loopline refuses, naming it"),
    "matrix-csv": (
        400,
        200,
        "MLflow cannot read CSV for a model with a tensor signature; loopline scores it",
    ),
    "tensor-texts-csv": (400, 200, "as matrix-csv: a CSV for a model with a tensor signature"),
    "nan-optional-long": (400, 200, "a NaN in an optional integer column is a null: loopline scores it"),
    "nan-matrix": (
        400,
        500,
        "a NaN for a model that takes none: a model's failure is a 500 MODEL_ERROR naming the row",
    ),
    "minus-infinity-booster": (200, 400, "JSON has no infinity: loopline refuses one, naming it"),
    "csv-semicolons": (400, 200, "a CSV of ';' as Excel writes it in much of Europe: loopline reads it"),
    "csv-decimal-commas": (400, 200, "as csv-semicolons, with decimal commas: loopline reads them"),
    "unsigned-csv-semicolons": (400, 200, "as csv-decimal-commas, for a model without a signature"),
    "matrix-split-null": (
        400,
        500,
        "a null for a model that takes no NaN: MLflow answers 400 to any failure of the model, loopline 500 "
        "MODEL_ERROR naming the row",
    ),
}

ANSWER_DIFFERENCES: dict[str, str] = {
    "bare-texts-named-column": "a table of one column to a model without a signature logged with a list "
    "of texts: MLflow hands it the table, whose vectorizer reads the column's name as the one text (one "
    "answer for two rows); loopline its texts, as the example shows it takes them",
    "typed-number-in-string": "a number in a text column: MLflow hands the model the number, loopline its "
    "text, as the signature says",
}
"""Shapes both answer 200 with different answers, on purpose."""

"""MLflow-compatible scoring: for every request shape, loopline's status equals that of MLflow's own
scoring server on the same model, except the documented differences. Both are real servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import loopline
from tests.helpers import system_key, wait_until
from tests.servers import serving_models
from tests.serving.compat_shapes import ANSWER_DIFFERENCES, DIFFERENCES, SHAPES

pytestmark = pytest.mark.slow

GATE_METRICS = {"accuracy": 1.0, "roc_auc": 1.0, "log_loss": 0.0}
T_COLUMNS = ["name", "age", "score", "active"]


class Dated:
    """A Python model over a date and time (when) and a number (n): days since 2020 plus n, computed
    against a date without an offset, as most training rows hold them."""

    @staticmethod
    def build() -> Any:
        import mlflow.pyfunc

        class DatedModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                days = (model_input["when"] - pd.Timestamp("2020-01-01")).dt.days
                return (days + model_input["n"]).to_numpy(dtype=float)

        return DatedModel()


class Unsigned:
    """A Python model without a signature over a number (n) and a boolean (flag): twice n where flag is
    true, else 0; it computes on them as the types they are."""

    @staticmethod
    def build() -> Any:
        import mlflow.pyfunc

        class UnsignedModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                doubled = model_input["n"] * 2.0
                return doubled.where(model_input["flag"], 0.0)

        return UnsignedModel()


class Typed:
    """A Python model over text, two optional numbers and a boolean (its predict tolerates nulls), with a
    parameter, offset (a double, 0.0 by default), added to each answer: it counts on being given it, as
    MLflow gives a model its params schema's defaults."""

    @staticmethod
    def build() -> Any:
        import mlflow.pyfunc

        class TypedModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                # (no type hints: MLflow would read them as the model's signature)
                frame = model_input
                out = frame["name"].map(lambda s: len(s) if isinstance(s, str) else -1).astype(float)
                for column in ("age", "score"):
                    if column in frame:
                        out = out + pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(float)
                out = out + frame["active"].map(lambda v: 1.0 if v is True or v == 1 else 0.0)
                return (out + params["offset"]).to_numpy()  # MLflow gives the default where none is sent

        return TypedModel()


def save_models(folder: Path) -> dict[str, Path]:
    """The two models of the shapes, saved as MLflow models."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.xgboost
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    numeric = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.1, 0.2, 0.9], "n": np.array([1, 2, 3, 4], dtype="int64")}
    )

    def save(flavor: Any, model: Any, name: str, rows: Any, requirement: str) -> None:
        answers = model.predict(rows)
        flavor.save_model(
            model,
            folder / name,
            signature=infer_signature(rows, answers),
            input_example=rows[:2],
            pip_requirements=[requirement],
        )

    save(
        mlflow.sklearn,
        LinearRegression().fit(numeric, [1.0, 2.0, 2.5, 4.0]),
        "numeric",
        numeric,
        "scikit-learn",
    )
    typed = pd.DataFrame(
        {
            "name": ["ann", "bob", None],
            "age": pd.array([30, None, 41], dtype="Int64"),
            "score": [0.5, np.nan, 1.5],
            "active": [True, False, True],
        }
    )
    mlflow.pyfunc.save_model(
        folder / "typed",
        python_model=Typed.build(),
        signature=infer_signature(typed, np.array([1.0, 2.0, 3.0]), params={"offset": 0.0}),
        input_example=typed.iloc[:1],
        pip_requirements=["pandas"],
    )
    dated = pd.DataFrame({"when": pd.to_datetime(["2026-02-03 14:00", "2025-01-01 00:00"]), "n": [1.0, 2.0]})
    mlflow.pyfunc.save_model(
        folder / "dated",
        python_model=Dated.build(),
        signature=infer_signature(dated, np.array([1.0, 2.0])),
        input_example=dated.iloc[:1],
        pip_requirements=["pandas"],
    )
    matrix = numeric.to_numpy(dtype=np.float64)
    save(
        mlflow.sklearn, LinearRegression().fit(matrix, [1.0, 2.0, 2.5, 4.0]), "matrix", matrix, "scikit-learn"
    )
    # answers of other kinds than float64: text labels (fitted on NumPy text), float32 (XGBoost)
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBRegressor

    named = np.array(["low", "high"])[[0, 0, 1, 1]]
    save(mlflow.sklearn, LogisticRegression().fit(numeric, named), "labels", numeric, "scikit-learn")
    save(
        mlflow.xgboost,
        XGBRegressor(n_estimators=5).fit(numeric, [1.0, 2.0, 2.5, 4.0]),
        "booster",
        numeric,
        "xgboost",
    )
    # a text classifier: one column of text, its vectorizer selecting it
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

    reviews = pd.DataFrame({"review": ["loved the story", "a dull waste", "superb music", "boring plot"]})
    words = ColumnTransformer([("words", TfidfVectorizer(), "review")])
    text = Pipeline([("words", words), ("clf", LogisticRegression())]).fit(reviews, [1, 0, 1, 0])
    save(mlflow.sklearn, text, "text", reviews, "scikit-learn")
    # a text classifier as tutorials write it, its vectorizer fitted on a Series of texts: logged with a
    # list of texts as its example (no signature: MLflow infers none from one), or a 1-D tensor signature
    texts = Pipeline([("words", TfidfVectorizer()), ("clf", LogisticRegression())])
    texts.fit(reviews["review"], [1, 0, 1, 0])
    examples = reviews["review"].tolist()
    mlflow.sklearn.save_model(
        texts, folder / "bare-text", input_example=examples[:2], pip_requirements=["scikit-learn"]
    )
    save(mlflow.sklearn, texts, "tensor-text", np.array(examples), "scikit-learn")
    # a pipeline that imputes first, logged as autolog logs it: a signature from the first training rows,
    # which hold no null (so every column is required), and no input example
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    passengers = pd.DataFrame(
        {"age": [22.0, np.nan, 38.0, 26.0], "fare": [7.25, 71.3, 8.05, 53.1], "port": ["S", "C", None, "Q"]}
    )
    words_or_numbers = ColumnTransformer(
        [
            ("numbers", SimpleImputer(strategy="median"), ["age", "fare"]),
            ("port", Pipeline([("fill", SimpleImputer(strategy="most_frequent")),
                               ("hot", OneHotEncoder(handle_unknown="ignore"))]), ["port"]),
        ]
    )  # fmt: skip
    imputed = Pipeline([("features", words_or_numbers), ("clf", LogisticRegression())])
    imputed.fit(passengers, [0, 1, 1, 0])
    mlflow.sklearn.save_model(
        imputed,
        folder / "imputed",
        signature=infer_signature(passengers.iloc[[0, 1]].fillna(30.0), imputed.predict(passengers)[:2]),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=["numpy.dtype"],  # the encoder's dtype, as MLflow's advice says
    )
    # a strict encoder (OneHotEncoder's default, handle_unknown="error") over the plan
    plans = pd.DataFrame({"plan": ["basic", "pro", "team", "pro"], "tenure": [3.0, 40.0, 12.0, 7.0]})
    strict = ColumnTransformer([("plan", OneHotEncoder(), ["plan"]), ("tenure", "passthrough", ["tenure"])])
    encoded = Pipeline([("features", strict), ("clf", LogisticRegression())]).fit(plans, [0, 1, 1, 0])
    mlflow.sklearn.save_model(
        encoded,
        folder / "encoded",
        signature=infer_signature(plans, encoded.predict(plans)),
        input_example=plans.head(2),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=["numpy.dtype"],
    )
    # a statsmodels regression fitted by a formula, whose patsy coding knows only the districts it saw
    import mlflow.statsmodels
    import statsmodels.formula.api as smf

    houses = pd.DataFrame(
        {
            "area": [50.0, 80.0, 120.0, 65.0, 95.0, 150.0],
            "district": ["north", "south", "centre", "north", "centre", "south"],
            "price": [100.0, 150.0, 300.0, 130.0, 240.0, 290.0],
        }
    )
    formula = smf.ols("price ~ area + C(district)", data=houses).fit()
    mlflow.statsmodels.save_model(
        formula,
        folder / "formula",
        input_example=houses.drop(columns="price").head(2),
        pip_requirements=["statsmodels"],
    )
    # a Python model logged without a signature or an example: a CSV's columns reach it as pandas reads them
    mlflow.pyfunc.save_model(folder / "unsigned", python_model=Unsigned.build(), pip_requirements=["pandas"])
    return {
        name: folder / name
        for name in (*MODELS, "bare-text", "tensor-text", "imputed", "encoded", "formula", "unsigned")
    }


MODELS = ("numeric", "typed", "matrix", "labels", "booster", "text", "dated")


def mlflow_server(model: Path) -> str:
    """MLflow's own scoring app for ``model``, served by uvicorn in a thread; its URL."""
    import mlflow.pyfunc
    import uvicorn
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(mlflow.pyfunc.load_model(str(model)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


@dataclass
class Both:
    loopline: str
    keys: dict[str, str]
    mlflow: dict[str, str]
    project: Path

    def post(self, endpoint: str, route: str, body: object, **headers: str) -> httpx.Response:
        """A JSON request to one of loopline's endpoints, with its key."""
        sent = {"content-type": "application/json", "authorization": f"Bearer {self.keys[endpoint]}"}
        return httpx.post(
            f"{self.loopline}/endpoints/{endpoint}/{route}",
            content=json.dumps(body).encode(),
            headers={**sent, **{k.replace("_", "-"): v for k, v in headers.items()}},
            timeout=30,
        )


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    root = tmp_path_factory.mktemp("compat")
    models = save_models(root / "models")
    with serving_models(root, models, GATE_METRICS, strict={"strict": "numeric"}) as (server, project):
        yield Both(
            server.url,
            {name: system_key(project, name, "dev") for name in (*models, "strict")},
            {name: mlflow_server(folder) for name, folder in models.items()},
            project,
        )


def answer(url: str, content_type: str, body: bytes, key: str | None = None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(url, content=body, headers=headers, timeout=30)


@pytest.mark.parametrize(("name", "model", "content_type", "body"), SHAPES, ids=[s[0] for s in SHAPES])
def test_invocations_answer_with_mlflow_s_status_except_where_documented(
    both: Both, name: str, model: str, content_type: str, body: bytes
) -> None:
    mlflow_answer = answer(f"{both.mlflow[model]}/invocations", content_type, body)
    our_answer = answer(
        f"{both.loopline}/endpoints/{model}/invocations", content_type, body, both.keys[model]
    )
    theirs, ours = mlflow_answer.status_code, our_answer.status_code
    if name in DIFFERENCES:
        expected_theirs, expected_ours, _why = DIFFERENCES[name]
        assert (theirs, ours) == (expected_theirs, expected_ours)
    else:
        assert ours == theirs, f"{name}: MLflow {theirs}, loopline {ours}"
    if theirs == ours == 200:  # and the same answer, number for number
        same = our_answer.json() == mlflow_answer.json()
        assert same != (name in ANSWER_DIFFERENCES), (name, our_answer.json(), mlflow_answer.json())


def test_the_documented_differences_are_in_the_docs() -> None:
    text = (Path(__file__).parents[2] / "docs" / "endpoints.md").read_text()
    for name in (*DIFFERENCES, *ANSWER_DIFFERENCES):
        assert f"`{name}`" in text, name


@pytest.mark.parametrize(
    ("model", "rows", "message"),
    [
        (  # a strict encoder (OneHotEncoder's default)
            "encoded",
            [{"plan": "pro", "tenure": 5.0}, {"plan": "enterprise", "tenure": 2.0}],
            "column 'plan' row 1: a category the model was not fitted on (it knows basic, pro, team): give "
            "one of those, or retrain the model knowing it (or with handle_unknown='ignore' on its encoder)",
        ),
        (  # a statsmodels formula's categorical term
            "formula",
            [{"area": 70.0, "district": "north"}, {"area": 90.0, "district": "east"}],
            "column 'district' row 1: a category the model was not fitted on (it knows centre, north, "
            "south): give one of those, or retrain the model knowing it (a formula encodes only the levels "
            "of the rows it was fitted on)",
        ),
    ],
    ids=["encoder", "formula"],
)
def test_a_category_the_model_was_never_fitted_on_is_a_client_error_naming_the_column_and_what_it_knows(
    both: Both, model: str, rows: list[dict[str, Any]], message: str
) -> None:
    unseen = both.post(model, "invocations", {"dataframe_records": rows})
    assert unseen.status_code == 400
    assert unseen.json() == {"error_code": "UNKNOWN_CATEGORY", "message": message}


def test_dates_and_times_with_an_offset_that_fail_the_model_are_a_client_error_naming_the_column(
    both: Both,
) -> None:
    offset = both.post(
        "dated", "invocations", {"dataframe_records": [{"when": "2026-02-03T14:00:00Z", "n": 1.0}]}
    )
    assert offset.status_code == 400 and offset.json()["error_code"] == "WRONG_TYPE"
    assert offset.json()["message"].startswith(
        "column 'when' holds dates and times with a time zone offset, and the model fails on them "
        "(TypeError: "
    )
    assert offset.json()["message"].endswith(
        "its signature's dates and times have none, as MLflow's server takes them: send them without one (in "
        "the time zone the training's were)"
    )
    naive = both.post(
        "dated", "invocations", {"dataframe_records": [{"when": "2026-02-03T14:00:00", "n": 1.0}]}
    )
    assert naive.json() == {"predictions": [2226.0]}


def test_optional_columns_may_be_null_or_absent_and_the_model_gets_what_it_was_trained_on(both: Both) -> None:
    rows = [["ann", 30, 0.5, True], ["bo", None, None, False], [None, 7, 1.0, True]]
    answer = both.post("typed", "invocations", {"dataframe_split": {"columns": T_COLUMNS, "data": rows}})
    assert answer.status_code == 200, answer.text
    # len(name) or -1, plus age and score with nulls as 0, plus 1 for active
    assert answer.json() == {"predictions": [34.5, 2.0, 8.0]}
    absent = both.post("typed", "invocations", {"dataframe_records": [{"name": "ann", "active": True}]})
    assert absent.json() == {"predictions": [4.0]}


def test_a_parameter_the_model_cannot_take_is_refused_naming_it_and_what_the_model_takes(both: Both) -> None:
    row = dict(zip(T_COLUMNS, ["ann", 30, 0.5, True], strict=True))
    given = both.post("typed", "invocations", {"dataframe_records": [row], "params": {"offset": 2}})
    assert given.json() == {"predictions": [36.5]}  # 3 + 30 + 0.5 + 1, plus the offset
    refused = both.post("typed", "score", {"input_data": [row], "params": {"offset": "two"}})
    assert refused.status_code == 400
    assert refused.json() == {
        "error_code": "BAD_PARAMS",
        "message": "params 'offset' must be a number (double, as the model's signature says; 0.0 where "
        "not given), not a string",
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"input_data": {"columns": ["a", "b", "n"], "index": [0], "data": [[1.0, 2.0, 3]]}}, 200),
        ({"input_data": {"a": [1.0, 4.0], "b": [2.0, 5.0], "n": [3, 6]}}, 200),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1.0, 2.0, 3]]}, "params": {"k": 1}}, 200),
        ({"input_data": [[1.0, 2.0, 3]]}, 400),
        ({"input_data": "a,b,n"}, 400),
        ({"data": [[1.0, 2.0, 3]]}, 400),  # rows without names, for a model whose columns have names
        ({"data": {"a": [1.0]}}, 400),
        ({"input_data": {"columns": ["a", "b", "n"], "data": [[1.0, 2.0, 3]]}, "data": [[1.0, 2.0, 3]]}, 400),
    ],
)
def test_score_takes_azure_ml_s_documented_input_data_shapes(both: Both, body: object, status: int) -> None:
    answer = both.post("numeric", "score", body)
    assert answer.status_code == status, answer.text


def test_score_takes_the_rows_of_a_custom_score_py_s_clients_for_a_model_fitted_on_an_array(
    both: Both,
) -> None:
    # Azure ML's samples of a score.py deployment send {"data": [[...], ...]} and predict on the array.
    rows = [[1, 2, 3], [10.5, 9, 8]]
    answer = both.post("matrix", "score", {"data": rows})
    named = both.post("matrix", "score", {"input_data": {"columns": [0, 1, 2], "data": rows}})
    assert answer.status_code == 200 and answer.json() == named.json(), answer.text
    refused = both.post("numeric", "score", {"data": rows})
    assert refused.json()["error_code"] == "MISSING_COLUMNS" and "input_data" in refused.json()["message"]


def test_a_model_fitted_on_an_array_answers_azure_ml_s_tutorial_request_as_its_own_predict_does(
    both: Both,
) -> None:
    # The get-started tutorial's sample request: columns named by position, an index, integer values.
    rows = [[20000, 2, 2], [10, 9, 8]]
    body = {"input_data": {"columns": [0, 1, 2], "index": [0, 1], "data": rows}}
    answer = both.post("matrix", "score", body)
    assert answer.status_code == 200, answer.text
    import mlflow.sklearn

    own = mlflow.sklearn.load_model(str(both.project.parent / "models" / "matrix")).predict(
        np.array(rows, float)
    )
    np.testing.assert_allclose(answer.json(), own, rtol=1e-12)
    null = both.post(
        "matrix", "score", {"input_data": {"columns": [0, 1, 2], "data": [rows[0], [1, None, 3]]}}
    )
    assert null.status_code == 500 and null.json()["error_code"] == "MODEL_ERROR"
    assert "row 1" in null.json()["message"] and "NaN" in null.json()["message"], null.text


def test_a_text_classifier_without_a_signature_answers_each_text_by_every_route(both: Both) -> None:
    # fitted on a Series of texts and logged with a list of texts as its example, as tutorials write it
    texts = ["superb music", "a dull waste", "loved the story"]
    import mlflow.sklearn

    own = mlflow.sklearn.load_model(str(both.project.parent / "models" / "bare-text")).predict(texts)
    for route, body in [
        ("invocations", {"inputs": texts}),
        ("invocations", {"instances": texts}),
        ("score", {"input_data": texts}),
    ]:
        answer = both.post("bare-text", route, body)
        assert answer.status_code == 200, (route, answer.text)
        predictions = answer.json()["predictions"] if route == "invocations" else answer.json()
        assert predictions == own.tolist() == [1, 0, 1], (route, body)
    # a model of one named column takes Azure ML's list of values as that column too
    column = both.post("text", "score", {"input_data": texts})
    assert column.status_code == 200 and column.json() == [1, 0, 1], column.text


def test_azure_s_deployment_header_picks_the_deployment(both: Both) -> None:
    body = {"input_data": {"columns": ["a", "b", "n"], "data": [[1.0, 2.0, 3]]}}
    chosen = both.post("numeric", "score", body, azureml_model_deployment="only")
    assert chosen.status_code == 200 and chosen.headers["loopline-deployment"] == "only"
    missing = both.post("numeric", "score", body, azureml_model_deployment="nope")
    assert missing.status_code == 404 and missing.json()["error_code"] == "UNKNOWN_DEPLOYMENT"


def test_a_strict_endpoint_refuses_what_mlflow_ignores_or_converts_and_can_be_relaxed(both: Both) -> None:
    extra = {"dataframe_split": {"columns": ["a", "b", "n", "x"], "data": [[1.0, 2.0, 3, 4]]}}
    text = {"dataframe_split": {"columns": ["a", "b", "n"], "data": [["1.0", 2.0, 3]]}}
    assert both.post("strict", "invocations", extra).json()["error_code"] == "UNKNOWN_COLUMN"
    assert both.post("strict", "invocations", text).json()["error_code"] == "WRONG_TYPE"
    assert both.post("numeric", "invocations", extra).status_code == 200
    loopline.update_endpoint("strict", strict=False, project=both.project)
    wait_until(
        lambda: both.post("strict", "invocations", extra).status_code == 200,
        10,
        "the server did not follow the change",
    )
    assert both.post("strict", "invocations", text).json()["predictions"]
    loopline.update_endpoint("strict", strict=True, project=both.project)

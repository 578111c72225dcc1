"""Loading a deployed model: which models take a null (or NaN) as a missing value, in a float column or a
text one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.errors import Refused, RequestRejected
from loopline.serving.model import check_model, load_model
from loopline.serving.predict import predict_frame
from loopline.serving.schema import Table, to_model_input


def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x.iloc[:, :6], np.asarray(y)


class Wrapped(mlflow.pyfunc.PythonModel):
    """A Python model around a classifier, answering its probabilities as they come (NaN for NaN)."""

    def __init__(self, clf: Any, impute: bool) -> None:
        self.clf, self.impute = clf, impute

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        rows = model_input.fillna(0.0) if self.impute else model_input
        return rows.to_numpy() @ self.clf.coef_[0]  # no check of its own: NaN in, NaN out


# name: (how to fit, whether it takes missing values)
SKLEARN: dict[str, tuple[Callable[[pd.DataFrame, np.ndarray], Any], bool]] = {
    "histogram boosting": (lambda x, y: HistGradientBoostingClassifier(max_iter=20).fit(x, y), True),
    "random forest": (lambda x, y: RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y), True),
    "imputer, then a linear model": (
        lambda x, y: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(x, y),
        True,
    ),
    "scaler, then a linear model": (
        lambda x, y: make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        False,
    ),
}


def saved(tmp_path: Path, model: Any, x: pd.DataFrame, python_model: bool = False) -> Path:
    """``model`` saved by MLflow as a training script would, from complete rows (every column required)."""
    folder = tmp_path / "model"
    example = x.head(3)
    if python_model:
        output = model.predict(None, example)
        mlflow.pyfunc.save_model(
            str(folder), python_model=model, signature=infer_signature(example, output), input_example=example
        )
    else:
        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    return folder


@pytest.mark.parametrize("case", list(SKLEARN))
def test_a_scikit_learn_model_takes_nulls_in_its_float_columns_exactly_when_it_takes_nan(
    case: str, tmp_path: Path
) -> None:
    fit, takes = SKLEARN[case]
    x, y = cancer()
    estimator = fit(x, y)
    loaded = load_model(saved(tmp_path, estimator, x), "")
    assert loaded.schema.missing is takes
    rows = [[None, *x.iloc[0, 1:].tolist()], x.iloc[1].tolist()]
    if not takes:  # a model that would fail on NaN: the request is refused, naming the cell
        with pytest.raises(RequestRejected) as refused:
            to_model_input(loaded.schema, Table(list(x.columns), rows), matrix=loaded.batchable)
        assert refused.value.error_code == "NULL_VALUE" and f"'{x.columns[0]}' row 0" in refused.value.message
        return
    data, _ = to_model_input(loaded.schema, Table(list(x.columns), rows), matrix=loaded.batchable)
    with_nan = pd.DataFrame(rows, columns=x.columns, dtype=np.float64)
    assert np.asarray(loaded.predict(data)).tolist() == estimator.predict(with_nan).tolist()
    assert predict_frame(loaded, with_nan)["prediction"].tolist() == estimator.predict(with_nan).tolist()


@pytest.mark.parametrize("impute", [True, False], ids=["fills its NaN", "answers NaN for NaN"])
def test_a_python_model_takes_nulls_only_when_it_answers_them_with_numbers(
    impute: bool, tmp_path: Path
) -> None:
    x, y = cancer()
    model = Wrapped(LogisticRegression(max_iter=2000).fit(x, y), impute)
    loaded = load_model(saved(tmp_path, model, x, python_model=True), "")
    assert loaded.schema.missing is impute
    with_nan = x.head(2).copy()
    with_nan.iloc[0, 0] = np.nan
    if impute:
        answers = predict_frame(loaded, with_nan)["prediction"].to_numpy()
        assert np.allclose(answers, model.predict(None, with_nan)) and np.isfinite(answers).all()
    else:
        with pytest.raises(Refused, match="is null, and the model requires a value there"):
            predict_frame(loaded, with_nan)


def customers() -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a plan, a country (missing for some customers) and a tenure, as a churn table holds them."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], 400),
            "country": rng.choice(np.array(["DE", "FR", None], dtype=object), 400),
            "tenure": rng.normal(24, 10, 400),
        }
    )
    return rows, ((rows["tenure"] < 20) & (rows["plan"] == "basic")).to_numpy().astype(int)


class Shouts(mlflow.pyfunc.PythonModel):
    """A Python model that reads every text cell as text: a null breaks it."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return [
            len(plan.upper()) + len(country.upper())
            for plan, country in zip(model_input["plan"], model_input["country"], strict=True)
        ]


def test_a_model_that_encodes_a_missing_category_takes_nulls_in_its_text_columns(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    x, y = customers()
    encoded = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["plan", "country"]),
            ("n", StandardScaler(), ["tenure"]),
        ]
    )
    estimator = make_pipeline(encoded, LogisticRegression()).fit(x, y)
    complete = x.dropna()  # an example without a null: MLflow's signature requires every column
    folder = saved(tmp_path / "encoded", estimator, complete)
    loaded = load_model(folder, "")
    taking = {c.name: c.nullable for c in loaded.schema.columns or ()}
    assert taking == {"plan": True, "country": True, "tenure": False}  # the scaler fails on NaN
    rows = [["basic", None, 3.0], [None, "DE", 40.0]]
    data, _ = to_model_input(
        loaded.schema, Table(["plan", "country", "tenure"], rows), matrix=loaded.batchable
    )
    expected = estimator.predict(pd.DataFrame(rows, columns=["plan", "country", "tenure"], dtype=object))
    assert np.asarray(loaded.predict(data)).tolist() == expected.tolist()  # as MLflow's server answers
    with pytest.raises(RequestRejected, match="column 'tenure' row 0 is null"):
        to_model_input(loaded.schema, Table(["plan", "country", "tenure"], [["basic", "DE", None]]))

    shouting = saved(tmp_path / "shouts", Shouts(), complete[["plan", "country"]], python_model=True)
    refusing = load_model(shouting, "")
    assert not any(c.nullable for c in refusing.schema.columns or ())
    with pytest.raises(RequestRejected, match="column 'country' row 0 is null"):
        to_model_input(refusing.schema, Table(["plan", "country"], [["basic", None]]))


def test_a_pipeline_fitted_on_a_csv_s_missing_texts_gets_nan_for_a_null_not_none(tmp_path: Path) -> None:
    """pandas reads a missing text from a CSV file as NaN: an imputer and a strict encoder fitted on it
    fail on the None that MLflow's server hands them for a JSON null ("unknown categories [None]"), and
    answer NaN as in training. A model that fails on None in a text column and answers NaN gets NaN."""
    import io

    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    x, y = customers()
    as_read = pd.read_csv(io.StringIO(x.to_csv(index=False)))  # country's None: NaN, as training reads it
    encoded = ColumnTransformer(
        [
            ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["country"]),
            ("n", "passthrough", ["tenure"]),
        ]
    )
    estimator = make_pipeline(encoded, LogisticRegression()).fit(as_read, y)
    # as autolog logs it: a signature from the training rows (country optional there), no input example
    folder = tmp_path / "autologged"
    mlflow.sklearn.save_model(
        estimator,
        str(folder),
        signature=infer_signature(as_read, estimator.predict(as_read)),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    loaded = load_model(folder, "")
    rows = [["basic", None, 3.0], ["pro", "DE", 40.0], ["team", None, 12.0]]
    data, _ = to_model_input(loaded.schema, Table(["plan", "country", "tenure"], rows), matrix=False)
    with pytest.raises(ValueError, match=r"unknown categories \[None\]"):
        estimator.predict(data)  # as MLflow's server hands it the rows
    expected = estimator.predict(pd.DataFrame(rows, columns=["plan", "country", "tenure"]).fillna(np.nan))
    assert np.asarray(loaded.predict(data)).tolist() == expected.tolist()
    assert np.asarray(loaded.predict(data)).tolist() == expected.tolist()  # and again, at once
    # a model that answers None is handed None, as by MLflow's server
    folder = saved(tmp_path / "nones", TellsNone(), x.dropna(), python_model=True)
    loaded = load_model(folder, "")
    data, _ = to_model_input(loaded.schema, Table(["plan", "country", "tenure"], rows), matrix=False)
    assert np.asarray(loaded.predict(data)).tolist() == [1.0, 0.0, 1.0]


class TellsNone(mlflow.pyfunc.PythonModel):
    """A Python model that answers 1 for a None country, 2 for NaN, 0 for a text."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["country"].map(lambda v: 1.0 if v is None else 0.0 if isinstance(v, str) else 2.0)


def test_infinity_is_refused_even_where_nan_is_a_missing_value(tmp_path: Path) -> None:
    x, y = cancer()
    fit, _ = SKLEARN["histogram boosting"]
    loaded = load_model(saved(tmp_path, fit(x, y), x), "")
    rows = [[float("inf"), *x.iloc[0, 1:].tolist()]]
    with pytest.raises(RequestRejected, match="is not a finite number"):
        to_model_input(loaded.schema, Table(list(x.columns), rows), matrix=loaded.batchable)
    with pytest.raises(Refused, match="is not a finite number"):
        predict_frame(loaded, pd.DataFrame(rows, columns=x.columns))


LOADS_IN_A_NEW_PROCESS = """\
import sys
from pathlib import Path
from loopline.serving.model import check_model, load_model
loaded = load_model(Path(sys.argv[1]), "")
print(loaded.flavor, "mlflow" in sys.modules)
"""


@pytest.mark.parametrize("serialization", ["skops", "cloudpickle", "pickle"])
def test_a_scikit_learn_model_loads_as_mlflow_loads_it_without_importing_mlflow(
    serialization: str, tmp_path: Path
) -> None:
    x, y = cancer()
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    folder = tmp_path / serialization
    mlflow.sklearn.save_model(
        estimator,
        str(folder),
        signature=infer_signature(x.head(3), estimator.predict(x.head(3))),
        input_example=x.head(3),
        serialization_format=serialization,
        skops_trusted_types=["sklearn.linear_model._logistic.LogisticRegression"]
        if serialization == "skops"
        else None,
    )
    loaded = load_model(folder, "")
    rows = x.iloc[:20]
    data, _ = to_model_input(loaded.schema, Table(list(x.columns), rows.values.tolist()), matrix=True)
    ours = np.asarray(loaded.predict(data))
    assert ours.tolist() == mlflow.pyfunc.load_model(str(folder)).predict(rows).tolist()
    # A server or sandbox loading it takes no second and more for MLflow's import.
    done = subprocess.run(
        [sys.executable, "-c", LOADS_IN_A_NEW_PROCESS, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["sklearn", "False"]
    # What MLflow's own loader must read (code paths) or refuse keeps MLflow's loader.
    refusing = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    refused = subprocess.run(
        [sys.executable, "-c", LOADS_IN_A_NEW_PROCESS, str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, **refusing},
    )
    assert refused.returncode != 0 and "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" in refused.stderr


class NeedsALibrary(mlflow.pyfunc.PythonModel):
    """A forecasting model whose library was installed where it was trained, and is not here."""

    def load_context(self, context: Any) -> None:
        import fancy_forecasting  # type: ignore[import-not-found]  # noqa: F401

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["x"] * 2


def test_a_model_that_does_not_load_is_refused_naming_the_requirements_not_installed_here(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=NeedsALibrary(),
        input_example=pd.DataFrame({"x": [1.0, 2.0]}),
        pip_requirements=["fancy-forecasting==2.0", "pandas"],
    )
    with pytest.raises(Refused) as refused:
        check_model(folder)
    assert refused.value.message == (
        "the model does not load and answer its input example: ModuleNotFoundError: No module named "
        "'fancy_forecasting'; the model was logged with fancy-forecasting==2.0 (not installed): install "
        "its requirements where loopline runs"
    )


def pickled_by_another_scikit_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, requirement: str
) -> Path:
    """A pipeline pickled as scikit-learn 1.5.2 pickles it (the version each estimator's state records),
    saved by MLflow with ``requirement`` as its requirements."""
    import sklearn.base

    x, y = cancer()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    folder = tmp_path / "model"
    with monkeypatch.context() as patched:
        patched.setattr(sklearn.base, "__version__", "1.5.2")
        mlflow.sklearn.save_model(
            pipeline,
            str(folder),
            signature=infer_signature(x.head(3), pipeline.predict(x.head(3))),
            input_example=x.head(3),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=[requirement],
        )
    return folder


def warned_at_load(folder: Path) -> tuple[Any, list[str]]:
    """The loaded model and the kinds of the warnings its load let through."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(folder, "d")
    return model, [type(w.message).__name__ for w in caught]


def test_scikit_learn_s_own_version_warnings_are_left_out_where_loopline_says_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn

    said = pickled_by_another_scikit_learn(tmp_path / "said", monkeypatch, "scikit-learn==1.5.2")
    model, warned = warned_at_load(said)
    assert [str(d) for d in model.environment] == [f"scikit-learn==1.5.2 ({sklearn.__version__} here)"]
    assert "InconsistentVersionWarning" not in warned
    # a model whose requirements do not name scikit-learn: its own warnings are all there is, and stay
    unsaid = pickled_by_another_scikit_learn(tmp_path / "unsaid", monkeypatch, "pandas")
    model, warned = warned_at_load(unsaid)
    assert model.environment == () and warned.count("InconsistentVersionWarning") == 3  # pipeline and steps


@pytest.mark.parametrize("estimator", [LogisticRegression(max_iter=500), KNeighborsClassifier()])
def test_a_scikit_learn_model_takes_matrices_without_a_feature_names_warning(
    estimator: Any, tmp_path: Path
) -> None:
    import warnings

    x, y = cancer()
    folder = saved(tmp_path, estimator.fit(x, y), x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning, but for the filters the load puts before this
        model = load_model(folder, "d")  # a compiled form is compared with the estimator on matrices
        answers = model.predict(x.head(5).to_numpy())
    assert len(answers) == 5 and [str(w.message) for w in caught] == []


def with_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    """A step of the user's own that reads its columns by name: it takes a DataFrame, never a matrix."""
    return frame.assign(ratio=frame["mean_area"] / frame["mean_perimeter"])


def test_a_scikit_learn_model_that_reads_its_columns_by_name_answers_tables_as_mlflow_hands_them(
    tmp_path: Path,
) -> None:
    from sklearn.preprocessing import FunctionTransformer

    x, y = cancer()
    pipeline = make_pipeline(FunctionTransformer(with_ratio), StandardScaler(), LogisticRegression())
    folder = saved(tmp_path, pipeline.fit(x, y), x)  # every column a number: the matrix path would be taken
    model = load_model(folder, "d")
    assert not model.batchable and "reads its columns by name" in model.path
    check_model(folder)  # its input example and null probes answered, as the sandbox checks a new version
    rows = x.iloc[10:20]
    served = predict_frame(model, rows)  # as a batch job scores a table
    own = mlflow.pyfunc.load_model(str(folder)).predict(rows)  # what a stock MLflow client answers
    np.testing.assert_array_equal(served["prediction"].to_numpy(), np.asarray(own))
    table = Table(list(rows.columns), rows.to_numpy().tolist())  # as a scoring request reaches it
    data, _ = to_model_input(model.schema, table, matrix=model.batchable)
    np.testing.assert_array_equal(np.asarray(model.predict(data)), np.asarray(own))
    # one that takes matrices keeps them (and its compiled form)
    plain = load_model(
        saved(tmp_path / "plain", make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), x), "d"
    )
    assert plain.batchable and "reads its columns by name" not in plain.path


class FourFeatures(mlflow.pyfunc.PythonModel):
    """A network-like model fitted on arrays of four features, as ``mlflow.pytorch`` models take them;
    ``broken`` reads a fifth feature that no row has."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        rows = np.asarray(model_input, dtype=np.float32)
        return rows[:, 4] if self.broken else rows @ np.array([0.5, -0.2, 0.1, 0.3], dtype=np.float32)


@pytest.mark.parametrize("broken", [False, True])
def test_a_model_fitted_on_arrays_answers_its_example_rows_before_it_is_deployed(
    broken: bool, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    example = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]], dtype=np.float32)
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=FourFeatures(broken),
        signature=infer_signature(example, FourFeatures(False).predict(None, example)),
        input_example=example,
    )
    assert json_rows(folder / "input_example.json") == example.tolist()  # what MLflow wrote: a list of rows
    if broken:
        with pytest.raises(Refused, match="does not load and answer its input example: IndexError: index 4"):
            check_model(folder)
        return
    answer = check_model(folder).answer_example()
    assert np.allclose(np.asarray(answer), FourFeatures(False).predict(None, example))


def json_rows(path: Path) -> Any:
    import json

    return [[float(np.float32(v)) for v in row] for row in json.loads(path.read_text())]

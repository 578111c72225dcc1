"""Scikit-learn pipelines predicted with numpy alone: the same answers bit for bit, or not compiled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from loopline.serving.compiled import _chain, _thread_counts, compile_or_say_why, compile_predict
from loopline.serving.model import load_model
from loopline.serving.trees import split_rows
from tests.helpers import model_version


def held_out(x: np.ndarray) -> np.ndarray:
    """Rows the model never saw: the data shifted and scaled, some far outside the training range."""
    rng = np.random.default_rng(1)
    return np.concatenate([x * rng.uniform(0.5, 1.5, size=x.shape), x * 10, -x])


CASES: dict[str, tuple[Any, str]] = {
    "scaled logistic regression, binary": (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "cancer",
    ),
    "scaled logistic regression, three classes": (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "iris",
    ),
    "clipped min-max and a ridge classifier": (
        make_pipeline(MinMaxScaler(clip=True), RidgeClassifier()),
        "iris",
    ),
    "unscaled linear SVC": (LinearSVC(max_iter=20000), "cancer"),
    "SGD classifier with string labels": (SGDClassifier(random_state=0), "iris-named"),
    "linear regression": (LinearRegression(), "diabetes"),
    "scaled ridge": (make_pipeline(StandardScaler(with_mean=False), Ridge()), "diabetes"),
    "elastic net after passthrough": (make_pipeline("passthrough", ElasticNet(alpha=0.01)), "diabetes"),
}


def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "cancer":
        return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]
    if name == "diabetes":
        return load_diabetes(return_X_y=True)  # type: ignore[return-value]
    x, y = load_iris(return_X_y=True)
    if name == "iris-named":
        return x, np.array(["setosa", "versicolor", "virginica"])[y]
    return x, y


@pytest.mark.parametrize("case", list(CASES))
def test_supported_estimators_answer_exactly_as_their_own_predict(case: str) -> None:
    estimator, dataset = CASES[case]
    x, y = data(dataset)
    estimator.fit(x, y)
    predict = compile_predict(estimator, x[:5])
    assert predict is not None, f"{case} was not compiled"
    rows = held_out(x)
    expected = estimator.predict(rows)
    got = predict(rows)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    assert np.array_equal(predict(rows[:1]), estimator.predict(rows[:1]))


TREES: dict[str, tuple[Any, str]] = {
    "random forest, three classes": (RandomForestClassifier(n_estimators=200, random_state=0), "iris"),
    "random forest with string labels": (
        RandomForestClassifier(n_estimators=50, random_state=0),
        "iris-named",
    ),
    "scaled random forest regressor": (
        make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=50, random_state=0)),
        "diabetes",
    ),
    "extra trees, binary": (ExtraTreesClassifier(n_estimators=100, random_state=0), "cancer"),
    "extra trees regressor": (ExtraTreesRegressor(n_estimators=50, random_state=0), "diabetes"),
    "gradient boosting, three classes": (GradientBoostingClassifier(n_estimators=30, random_state=0), "iris"),
    "gradient boosting, binary": (GradientBoostingClassifier(n_estimators=50, random_state=0), "cancer"),
    "gradient boosting regressor": (GradientBoostingRegressor(random_state=0), "diabetes"),
    "gradient boosting regressor from zero": (
        GradientBoostingRegressor(init="zero", random_state=0),
        "diabetes",
    ),
    "histogram boosting, binary": (HistGradientBoostingClassifier(max_iter=50, random_state=0), "cancer"),
    "histogram boosting, three classes": (
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
        "iris",
    ),
    "scaled histogram boosting regressor": (
        make_pipeline(StandardScaler(), HistGradientBoostingRegressor(random_state=0)),
        "diabetes",
    ),
    "histogram boosting, Poisson loss": (
        HistGradientBoostingRegressor(loss="poisson", max_iter=50, random_state=0),
        "diabetes",
    ),
}


@pytest.mark.parametrize("case", list(TREES))
def test_tree_ensembles_answer_exactly_as_their_own_predict_at_every_batch_size(case: str) -> None:
    estimator, dataset = TREES[case]
    x, y = data(dataset)
    estimator.fit(x, y)
    compiled = compile_predict(estimator, x[:5])
    assert compiled is not None, f"{case} was not compiled"
    # treelite answers some batch sizes; which ones is measured at load ("the estimator up to 1 row,
    # treelite up to 128 rows, ..." on a busy machine), so every size below is checked whichever answers.
    assert "treelite" in compiled.path, compiled.path
    rows = held_out(np.repeat(x, 3, axis=0))
    for size in (1, 32, 1000, len(rows)):
        expected = estimator.predict(rows[:size])
        got = compiled(rows[:size])
        assert got.dtype == expected.dtype and np.array_equal(got, expected), size
    holes = rows[:50].copy()
    holes[::3, 0] = np.nan  # missing values are answered (or refused) as the estimator does
    try:
        expected = estimator.predict(holes)
    except ValueError as refused:
        with pytest.raises(ValueError, match="NaN"):
            compiled(holes)
        assert "NaN" in str(refused)
    else:
        assert np.array_equal(compiled(holes), expected)


def test_a_forest_is_faster_compiled_for_one_row() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=200, random_state=0).fit(x, y)
    compiled = compile_predict(forest, x[:5])
    assert compiled is not None
    one = x[:1]
    assert np.array_equal(compiled(one), forest.predict(one))
    # the choice was measured at load: a single row never goes to scikit-learn's per-tree dispatch
    assert "treelite" in compiled.path


def test_a_process_held_to_one_openmp_thread_walks_its_trees_on_one_and_two_threads_answer_alike() -> None:
    # OMP_NUM_THREADS=1 (usual in containers and beside other workers) or a limit set by the user's code:
    # treelite refuses more threads than OpenMP allows, so the parallel walk must not be tried.
    x, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    rows = np.repeat(x, 4, axis=0)  # more rows than the parallel walk takes
    with threadpool_limits(limits=1, user_api="openmp"):
        compiled = compile_predict(forest, x[:5])
        assert compiled is not None and "threads" not in compiled.path
        assert np.array_equal(compiled(rows), forest.predict(rows))
    # Allowed two (whatever OMP_NUM_THREADS this process started with), the two-thread walk is offered and
    # answers as the forest does.
    if len(os.sched_getaffinity(0)) < 2:
        return
    chain = _chain(forest, None)
    assert chain is not None
    with threadpool_limits(limits=2, user_api="openmp"):
        _single, parallel = _thread_counts(chain[0])
        assert list(parallel) == ["treelite (2 threads)"]
        assert np.array_equal(parallel["treelite (2 threads)"](rows), forest.predict(rows))


def test_rows_at_the_split_thresholds_are_part_of_the_probe() -> None:
    x, y = load_diabetes(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    rows = split_rows(forest, x[:5])
    assert rows is not None and len(rows) == 3 * 256
    thresholds = {
        (int(f), np.float32(t))
        for e in forest.estimators_
        for f, t in zip(e.tree_.feature, e.tree_.threshold, strict=True)
        if f >= 0
    }
    at = rows[::3]
    changed = at != x[np.arange(len(at)) % 5]
    assert (changed.sum(axis=1) <= 1).all()  # one feature moved per row, onto a threshold
    assert all(
        (int(f), np.float32(at[i, f])) in thresholds for i, f in zip(*np.nonzero(changed), strict=True)
    )
    assert (rows[1::3] < rows[::3]).any() and (rows[2::3] > rows[::3]).any()  # and just either side of it


def test_a_forest_whose_predict_differs_from_its_trees_keeps_its_own_predict() -> None:
    x, y = load_diabetes(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(x, y)
    honest = forest.predict
    forest.predict = lambda rows: honest(rows) + 1e-9  # type: ignore[method-assign]
    compiled, why = compile_or_say_why(forest, x[:5])
    assert compiled is None
    assert why == "the model's own predict (its treelite form does not answer the probe rows bit for bit)"


def test_a_custom_step_in_a_pipeline_keeps_its_own_predict_and_says_which() -> None:
    x, y = load_diabetes(return_X_y=True)

    class Clipped(TransformerMixin, BaseEstimator):  # a user's own transformer: nothing compiles it
        def fit(self, X: Any, y: Any = None) -> Clipped:
            return self

        def transform(self, X: Any) -> Any:
            return np.clip(X, -0.1, 0.1)

    model = make_pipeline(Clipped(), RandomForestRegressor(n_estimators=10, random_state=0)).fit(x, y)
    compiled, why = compile_or_say_why(model, x[:5])
    assert compiled is None
    assert why == "the model's own predict (no compiled form for the pipeline step Clipped)"


def test_other_estimators_keep_their_own_predict() -> None:
    x, y = load_iris(return_X_y=True)
    reduced = make_pipeline(PCA(2), LogisticRegression()).fit(x, y)
    assert compile_predict(reduced, x[:5]) is None

    class Shifted(LogisticRegression):  # a subclass may predict differently: never compiled
        def predict(self, X: Any) -> Any:
            return super().predict(X)[::-1]

    assert compile_predict(Shifted(max_iter=1000).fit(x, y), x[:5]) is None


def test_an_estimator_that_does_not_predict_as_its_class_says_is_not_compiled() -> None:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    honest = model.predict
    model.predict = lambda rows: np.roll(honest(rows), 1)  # type: ignore[method-assign]
    assert compile_predict(model, x[:5]) is None


def test_the_sample_projects_model_is_served_compiled_with_the_same_answers(served_project: Path) -> None:
    import mlflow.sklearn

    source = model_version(served_project, 1)
    folder = Path(source.source_uri.removeprefix("file://"))
    loaded = load_model(folder, source.content_digest)
    assert loaded.compiled
    example = loaded.example_input()
    rows = held_out(np.repeat(example, 50, axis=0))
    assert np.array_equal(loaded.predict(rows), mlflow.sklearn.load_model(str(folder)).predict(rows))

"""XGBoost and LightGBM models saved by MLflow's own flavors: served through treelite where that answers
exactly as the model's pyfunc predict does, at every batch size, and by the model itself otherwise."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from threadpoolctl import threadpool_limits

from loopline.serving.model import load_model


def frame(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    loader = {"cancer": load_breast_cancer, "diabetes": load_diabetes, "iris": load_iris}[name]
    x, y = loader(return_X_y=True, as_frame=True)
    x.columns = [str(c).replace(" ", "_") for c in x.columns]
    return x, np.asarray(y)


def lightgbm_booster(x: pd.DataFrame, y: np.ndarray) -> Any:
    return lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), num_boost_round=40)


def xgboost_booster(x: pd.DataFrame, y: np.ndarray) -> Any:
    return xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, y), num_boost_round=40)


# name: (dataset, how to fit, which flavor saves it, what answers it)
CASES: dict[str, tuple[str, Callable[[pd.DataFrame, np.ndarray], Any], Any, str]] = {
    "XGBClassifier, binary": (
        "cancer",
        lambda x, y: xgb.XGBClassifier(n_estimators=40).fit(x, y),
        mlflow.xgboost,
        "treelite",
    ),
    "XGBRegressor": (
        "diabetes",
        lambda x, y: xgb.XGBRegressor(n_estimators=60).fit(x, y),
        mlflow.xgboost,
        "treelite",
    ),
    "XGBoost Booster, regression": ("diabetes", xgboost_booster, mlflow.xgboost, "treelite"),
    "LGBMClassifier, three classes": (
        "iris",
        lambda x, y: lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y),
        mlflow.lightgbm,
        "treelite",
    ),
    "LGBMRegressor": (
        "diabetes",
        lambda x, y: lgb.LGBMRegressor(n_estimators=60, verbose=-1).fit(x, y),
        mlflow.lightgbm,
        "treelite",
    ),
    "LightGBM Booster, binary": ("cancer", lightgbm_booster, mlflow.lightgbm, "treelite"),
    # XGBoost's own sigmoid differs from treelite's in the last bit: its probabilities keep XGBoost's predict.
    "XGBoost Booster, probabilities": (
        "cancer",
        lambda x, y: xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, y), num_boost_round=20),
        mlflow.xgboost,
        "the model's own predict (no compiled form for XGBoost's Booster with objective binary:logistic: "
        "XGBoost's own link",
    ),
}


def saved(case: str, tmp_path: Path) -> Path:
    """The model of ``case``, fitted and saved by its MLflow flavor with a signature and an example."""
    dataset, fit, flavor, _path = CASES[case]
    x, y = frame(dataset)
    model = fit(x, y)
    example = x.head(3)
    output = model.predict(xgb.DMatrix(example)) if isinstance(model, xgb.Booster) else model.predict(example)
    folder = tmp_path / "model"
    # Named requirements: inferring them reloads the model in another process, which is not what this tests.
    flavor.save_model(
        model,
        str(folder),
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=["mlflow"],
    )
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_boosted_models_answer_as_their_pyfunc_predict_at_every_batch_size(case: str, tmp_path: Path) -> None:
    dataset, _fit, _flavor, path = CASES[case]
    x, _ = frame(dataset)
    folder = saved(case, tmp_path)
    loaded = load_model(folder, "")
    assert loaded.path.startswith(path), loaded.path
    pyfunc = mlflow.pyfunc.load_model(str(folder))
    rng = np.random.default_rng(0)
    rows = x.sample(n=1000, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * rng.uniform(0.8, 1.2, size=rows.shape)
    for size in (1, 32, 1000):
        expected = np.asarray(pyfunc.predict(rows.head(size)))
        matrix = rows.head(size).to_numpy(dtype=np.float64)
        got = np.asarray(loaded.predict(matrix if loaded.batchable else rows.head(size)))
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (case, size)


@pytest.mark.parametrize(
    "model",
    [
        lambda x, y: xgb.XGBRegressor(n_estimators=40).fit(x, y),
        lambda x, y: lgb.LGBMClassifier(n_estimators=40, verbose=-1).fit(x, y > np.median(y)),
    ],
    ids=["XGBRegressor", "LGBMClassifier"],
)
def test_the_two_thread_walk_answers_as_the_one_thread_walk_and_the_model(
    model: Callable[[np.ndarray, np.ndarray], Any],
) -> None:
    # A process free to use both cores may walk large batches on two threads (the parallel test run holds
    # each worker to one OpenMP thread, so it is allowed two here).
    from loopline.serving.trees import tree_step

    if len(os.sched_getaffinity(0)) < 2:
        return
    x, y = load_diabetes(return_X_y=True)
    fitted = model(x, y)
    step = tree_step(fitted)
    assert step is not None
    rows = np.repeat(x, 3, axis=0)
    with threadpool_limits(limits=2, user_api="openmp"):
        two = step(rows, threads=2)
    assert np.array_equal(two, step(rows, threads=1)) and np.array_equal(two, fitted.predict(rows))


def test_rows_at_the_decision_are_left_to_the_model_itself() -> None:
    from loopline.serving.trees import tree_step

    # Two rows alike but for their labels: no split helps, every probability is exactly one half.
    x = np.array([[1.0, 2.0], [1.0, 2.0]] * 10)
    model = xgb.XGBClassifier(n_estimators=3).fit(x, np.array([0, 1] * 10))
    asked: list[int] = []

    def own(rows: np.ndarray) -> np.ndarray:
        asked.append(len(rows))
        return np.asarray(model.predict(rows))

    step = tree_step(model, own)
    assert step is not None
    rows = np.array([[1.0, 2.0], [5.0, 7.0], [1.0, 2.0]])
    assert np.array_equal(step(rows), model.predict(rows))
    assert asked == [3]  # all three sit at 0.5: XGBoost's own sigmoid decides them


@pytest.mark.parametrize(
    "case", ["XGBRegressor", "LGBMClassifier, three classes", "LightGBM Booster, binary"]
)
def test_boosters_take_nulls_and_nan_as_missing_values_and_answer_as_their_pyfunc_predict(
    case: str, tmp_path: Path
) -> None:
    from loopline.serving.predict import predict_frame
    from loopline.serving.schema import Table, to_model_input

    x, _ = frame(CASES[case][0])
    folder = saved(case, tmp_path)  # trained on complete rows: MLflow's signature marks every column required
    loaded = load_model(folder, "")
    assert loaded.schema.missing and all(c.missing for c in loaded.schema.columns or ())
    rows = x.head(40).copy()
    rows.iloc[::3, 0] = np.nan
    rows.iloc[1::4, 2] = np.nan
    expected = np.asarray(mlflow.pyfunc.load_model(str(folder)).predict(rows))
    # a request's nulls, as a client sends them
    requested = [[None if pd.isna(v) else float(v) for v in row] for row in rows.itertuples(index=False)]
    data, _ = to_model_input(loaded.schema, Table(list(rows.columns), requested), matrix=loaded.batchable)
    assert np.array_equal(np.asarray(loaded.predict(data)), expected)
    # a batch job's rows, NaN in the data asset
    answers = predict_frame(loaded, rows)
    assert np.array_equal(np.asarray(answers["prediction"].tolist()), expected)

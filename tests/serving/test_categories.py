"""A LightGBM or XGBoost model fitted on pandas categories answers requests and batch jobs as it answers
those categories, where MLflow's server hands it text and fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import TRAINING_SCRIPTS, mlflow_pointed_at, system_key, use_script
from tests.servers import Server, free_port, split_body

XGBOOST = [
    ("import lightgbm as lgb", "import xgboost as xgb"),
    ("mlflow.lightgbm.autolog()", "mlflow.xgboost.autolog()"),
    (
        "lgb.LGBMRegressor(n_estimators=60, verbose=-1)",
        'xgb.XGBRegressor(n_estimators=60, enable_categorical=True, tree_method="hist")',
    ),
]


BOOSTER = [  # XGBoost's own training API, on a DMatrix that takes the categories
    XGBOOST[0],
    ("mlflow.lightgbm.autolog()", "mlflow.xgboost.autolog(log_input_examples=True)"),
    (
        "lgb.LGBMRegressor(n_estimators=60, verbose=-1).fit(X_train, y_train)",
        'xgb.train({"tree_method": "hist"}, xgb.DMatrix(X_train, y_train, enable_categorical=True), 60)',
    ),
    ("model.predict(X_test)", "model.predict(xgb.DMatrix(X_test, enable_categorical=True))"),
]


def _customers() -> pd.DataFrame:
    """New customers: a plan no one filled in, a region the model never saw."""
    return pd.DataFrame(
        {
            "plan": ["basic", "pro", "plus", None, "pro", "basic"],
            "region": ["north", "central", "east", "west", "south", "east"],
            "tenure": [3, 40, 12, 7, 59, 1],
        }
    )


def _own_answers(project: Path, flavor: str, rows: pd.DataFrame) -> np.ndarray:
    """What the model answers in its trainer's notebook: the rows' text columns made categories, as the
    training made them."""
    import mlflow

    with mlflow_pointed_at(project, "prod"):
        native = getattr(mlflow, flavor.split("-")[0]).load_model("models:/spend/1")
    categorical = rows.astype({"plan": "category", "region": "category"})
    if flavor == "xgboost-booster":
        import xgboost as xgb

        return np.asarray(native.predict(xgb.DMatrix(categorical, enable_categorical=True)))
    return np.asarray(native.predict(categorical))


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost", "xgboost-booster"])
def test_a_booster_fitted_on_pandas_categories_answers_as_it_does_on_them(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, flavor: str
) -> None:
    # (MLflow's own pyfunc of an XGBoost Booster makes a DMatrix that refuses every category column)
    project = new_project("simple", commit=False)
    source = (TRAINING_SCRIPTS / "lightgbm_categories.py").read_text()
    # the same training with XGBoost's estimator, or its own training API, as its documentation writes them
    for lightgbm, xgboost in {"xgboost": XGBOOST, "xgboost-booster": BOOSTER}.get(flavor, []):
        assert lightgbm in source
        source = source.replace(lightgbm, xgboost)
    use_script(project, "train_spend.py", {"r2": {"min": 0.8}}, source=source, name="spend")
    loopline.inner_loop(project)
    rows = _customers()
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    with Server(project, workspace="prod", port=port) as server:
        loopline.outer_loop_prod(project)
        answer = server.invoke("proj", system_key(project), split_body(rows))
    assert answer.status_code == 200, answer.text
    own = _own_answers(project, flavor, rows)
    np.testing.assert_allclose(answer.json()["predictions"], own, rtol=0, atol=1e-9)
    assert len(set(np.round(own, 6))) == len(rows)  # the categories told the answers apart

    # A batch job of the same rows, from a CSV file, answers the same.
    inbox = project / ".loopline" / "datastores" / "inbox"
    rows.to_csv(inbox / "customers.csv", index=False)
    loopline.register_data("customers", "inbox://customers.csv", project=project)
    loopline.create_batch_endpoint("spend-batch", "prod", project=project)
    loopline.create_batch_deployment("spend-batch", "blue", workspace="prod", version=1, project=project)
    job = loopline.batch_invoke("spend-batch", "customers", workspace="prod", project=project)
    written = pd.read_parquet(next((project / ".loopline" / "datastores" / "predictions").rglob("part-*")))
    assert job.rows == len(rows)
    np.testing.assert_allclose(written["prediction"].to_numpy(), own, rtol=0, atol=1e-9)

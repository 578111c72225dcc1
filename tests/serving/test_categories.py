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
        native = getattr(mlflow, flavor).load_model("models:/spend/1")
    return np.asarray(native.predict(rows.astype({"plan": "category", "region": "category"})))


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_a_booster_fitted_on_pandas_categories_answers_as_it_does_on_them(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, flavor: str
) -> None:
    project = new_project("simple", commit=False)
    source = (TRAINING_SCRIPTS / "lightgbm_categories.py").read_text()
    if flavor == "xgboost":  # the same training with XGBoost's estimator, as its documentation writes it
        for lightgbm, xgboost in XGBOOST:
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

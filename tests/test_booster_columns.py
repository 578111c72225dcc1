"""The columns a booster was fitted on, read from the file MLflow saved it in (no signature, no example)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model

from loopline.booster_columns import booster_columns

ROWS = pd.DataFrame({"tenure": [1.0, 5.0, 9.0, 30.0] * 10, "monthly": [20.0, 80.0, 35.0, 60.0] * 10})
LABELS = np.array([1, 0, 1, 0] * 10)


def saved(folder: Path, flavor: str, rows: object) -> list[str]:
    """The columns read from the booster of ``flavor`` fitted on ``rows``, saved as MLflow saves it (its
    requirements given, so MLflow infers none)."""
    if flavor == "xgboost":
        import mlflow.xgboost
        import xgboost as xgb

        mlflow.xgboost.save_model(xgb.train({}, xgb.DMatrix(rows, LABELS), 3), folder, pip_requirements=[])
    elif flavor == "lightgbm":
        import lightgbm as lgb
        import mlflow.lightgbm

        booster = lgb.train({"verbose": -1}, lgb.Dataset(rows, LABELS), 3)
        mlflow.lightgbm.save_model(booster, folder, pip_requirements=[])
    else:  # the scikit-learn estimator of LightGBM's, which MLflow pickles
        import lightgbm as lgb
        import mlflow.lightgbm

        estimator = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(rows, LABELS)
        mlflow.lightgbm.save_model(estimator, folder, pip_requirements=[])
    return booster_columns(folder, Model.load(str(folder / "MLmodel")).flavors)


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_a_booster_s_file_names_the_columns_it_was_fitted_on(tmp_path: Path, flavor: str) -> None:
    assert saved(tmp_path / "named", flavor, ROWS) == ["tenure", "monthly"]
    # fitted on an array: XGBoost names none, LightGBM its own Column_0, Column_1 (not a table's columns)
    unnamed = saved(tmp_path / "array", flavor, ROWS.to_numpy())
    assert unnamed in ([], ["Column_0", "Column_1"])


def test_an_estimator_saved_as_a_pickle_is_not_read(tmp_path: Path) -> None:
    assert saved(tmp_path / "estimator", "estimator", ROWS) == []


def test_a_lightgbm_file_is_read_a_bounded_line_at_a_time(tmp_path: Path) -> None:
    """The model file is the user's: a line of any length costs at most the bound, and a names line
    longer than that is not told in part."""
    import loopline.booster_columns as read

    saved(tmp_path / "model", "lightgbm", ROWS)
    flavors = Model.load(str(tmp_path / "model" / "MLmodel")).flavors
    path = tmp_path / "model" / str(flavors["lightgbm"]["data"])
    text = path.read_text()
    overlong = "x" * (3 * read._LONGEST_LINE + 7)
    path.write_text(f"tree\n{overlong}\n{text}")  # an endless line before the names: still found
    assert booster_columns(tmp_path / "model", flavors) == ["tenure", "monthly"]
    names = " ".join(f"c{i}" for i in range(read._LONGEST_LINE // 4))
    path.write_text(text.replace("feature_names=tenure monthly", f"feature_names={names}"))
    assert booster_columns(tmp_path / "model", flavors) == []
    path.write_text(overlong)  # one line, no newline at all
    assert booster_columns(tmp_path / "model", flavors) == []

"""The categories a scikit-learn model's strict encoders know, and what a caller is told of one they
never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from loopline.errors import Refused
from loopline.serving.encoders import formula_categories, guarded_categories, unseen_category
from loopline.serving.model import load_model
from loopline.serving.predict import predict_frame
from tests.serving.test_model import saved

ROWS = pd.DataFrame(
    {
        "plan": ["basic", "pro", "basic", "team"],
        "port": ["S", None, "C", "Q"],
        "city": ["Oslo", "Rome", "Oslo", "Lima"],
        "size": ["s", "m", "l", "m"],
        "tenure": [3.0, 40.0, 12.0, 7.0],
    }
)


def test_the_encoders_that_read_the_request_s_values_as_they_come_are_found_by_column() -> None:
    columns = ColumnTransformer(
        [
            ("plan", OneHotEncoder(), ["plan"]),  # strict: guarded
            ("port", make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder()), ["port"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),  # takes any city
            ("size", make_pipeline(FunctionTransformer(lambda x: x), OneHotEncoder()), ["size"]),  # changed
            ("tenure", StandardScaler(), ["tenure"]),
        ]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(ROWS, [0, 1, 1, 0])
    assert guarded_categories(model) == {"plan": ["basic", "pro", "team"], "port": ["C", "Q", "S"]}
    # an encoder first in the pipeline, fitted on the table itself, names its own columns
    alone = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(ROWS[["plan", "city"]], [0, 1, 1, 0])
    assert guarded_categories(alone) == {"plan": ["basic", "pro", "team"], "city": ["Lima", "Oslo", "Rome"]}
    assert guarded_categories(LogisticRegression().fit([[0.0], [1.0]], [0, 1])) == {}


def test_an_unseen_category_is_named_by_column_and_row_with_what_the_model_knows() -> None:
    guarded = {"plan": ["basic", "pro"], "code": [f"c{i:02}" for i in range(25)]}
    known = pd.DataFrame({"plan": ["pro", None], "code": ["c01", np.nan]})
    assert unseen_category(guarded, known) is None  # known values, and missing ones, are not unseen
    new = pd.DataFrame({"plan": ["pro", "pro", "pro"], "code": ["c01", "c01", "x9"]})
    assert unseen_category(guarded, new, first_row=1000) == (
        "column 'code' row 1,002: a category the model was not fitted on (it knows "
        + ", ".join(f"c{i:02}" for i in range(20))
        + " and 5 more): give one of those, or retrain the model knowing it (or with "
        "handle_unknown='ignore' on its encoder)"
    )


def test_a_batch_chunk_holding_an_unseen_category_is_refused_naming_it(tmp_path: Path) -> None:
    columns = ColumnTransformer(
        [("plan", OneHotEncoder(), ["plan"]), ("tenure", StandardScaler(), ["tenure"])]
    )
    estimator = make_pipeline(columns, LogisticRegression()).fit(ROWS[["plan", "tenure"]], [0, 1, 1, 0])
    model = load_model(saved(tmp_path, estimator, ROWS[["plan", "tenure"]]), "")
    chunk = pd.DataFrame({"plan": ["pro", "enterprise"], "tenure": [5.0, 6.0]})
    with pytest.raises(
        Refused,
        match=r"^column 'plan' row 501: a category the model was not fitted on \(it knows basic, pro, team\)",
    ):
        predict_frame(model, chunk, first_row=500)
    assert (
        predict_frame(model, chunk.iloc[[0]], first_row=500)["prediction"].tolist()
        == estimator.predict(chunk.iloc[[0]]).tolist()
    )


def test_a_formula_s_categorical_factors_of_one_column_are_found_with_the_levels_it_was_fitted_on() -> None:
    import statsmodels.formula.api as smf

    rows = pd.DataFrame(
        {
            "area": [50.0, 80.0, 120.0, 65.0, 95.0, 150.0, 70.0, 88.0],
            "district": ["north", "south", "centre", "north", "centre", "south", "north", "south"],
            "Build year": ["old", "new"] * 4,
            "rooms": [1, 2, 3, 1, 2, 3, 2, 1],
            "plan": ["a", "a", "b", "b"] * 2,
            "price": [100.0, 150.0, 300.0, 130.0, 240.0, 290.0, 140.0, 170.0],
        }
    )
    formula = (
        "price ~ area + C(district, Treatment('north')) + Q('Build year') + C(rooms) + plan + np.log(area)"
    )
    results = smf.ols(formula, data=rows).fit()
    assert formula_categories(results) == {
        "district": ["centre", "north", "south"],
        "Build year": ["new", "old"],
        "rooms": [1, 2, 3],
        "plan": ["a", "b"],
    }
    unseen = unseen_category(formula_categories(results), rows.assign(rooms=[1, 2, 3, 4, 1, 2, 3, 1]))
    assert unseen is not None and unseen.startswith("column 'rooms' row 3: a category the model was not")
    assert unseen.endswith("(a formula encodes only the levels of the rows it was fitted on)")
    assert formula_categories(smf.ols("price ~ area", data=rows).fit()) == {}  # no categorical factor
    assert formula_categories(LogisticRegression()) == {}  # no formula at all

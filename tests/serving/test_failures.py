"""What a caller is told when the model fails on a request: where in the input, and the model's reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from loopline.serving.failures import describe_failure
from loopline.serving.schema import Column, InputSchema

SCHEMA = InputSchema((Column("age", "double", required=False), Column("port", "string", required=False)))


@pytest.mark.parametrize(
    ("encoder", "blamed"),
    [
        # the ages are imputed; the ports' strict encoder never saw a missing one: "unknown categories [None]"
        (OneHotEncoder(), "column 'port' (null in row 1, which the model does not take)"),
        # the ports' encoder takes anything; the ages are not imputed: "Input X contains NaN"
        (
            OneHotEncoder(handle_unknown="ignore"),
            "column 'age' (null in row 0, which the model does not take)",
        ),
    ],
)
def test_the_column_blamed_for_a_null_is_the_one_whose_kind_of_null_the_model_names(
    encoder: OneHotEncoder, blamed: str
) -> None:
    training = pd.DataFrame({"age": [22.0, 38.0, 26.0, 35.0], "port": ["S", "C", "Q", "S"]})
    imputes_ages = isinstance(encoder.handle_unknown, str) and encoder.handle_unknown == "error"
    ages = SimpleImputer() if imputes_ages else "passthrough"
    model = make_pipeline(
        ColumnTransformer([("age", ages, ["age"]), ("port", encoder, ["port"])]), LogisticRegression()
    ).fit(training, [0, 1, 1, 0])
    rows = pd.DataFrame({"age": [np.nan, 30.0], "port": pd.Series(["S", None], dtype=object)})
    with pytest.raises(ValueError) as failed:
        model.predict(rows)
    assert describe_failure(SCHEMA, model.predict, rows, failed.value).startswith(f"{blamed}: ValueError: ")


def test_a_category_the_encoder_never_saw_is_blamed_on_the_request_s_column_that_holds_it() -> None:
    # scikit-learn numbers the encoder's own columns ("in column 1"); the caller's column is 'region'
    training = pd.DataFrame({"plan": ["basic", "pro", "basic", "pro"], "region": ["north", "south"] * 2})
    model = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(), ["plan", "region"])]), LogisticRegression()
    ).fit(training, [0, 1, 1, 0])
    rows = pd.DataFrame({"plan": ["pro", "basic", "pro"], "region": ["north", "south", "central"]})
    with pytest.raises(ValueError, match=r"unknown categories \['central'\] in column 1") as failed:
        model.predict(rows)
    schema = InputSchema((Column("plan", "string"), Column("region", "string")))
    assert describe_failure(schema, model.predict, rows, failed.value).startswith(
        "column 'region' row 2 (its value is one the model's error names): ValueError: Found unknown "
        "categories ['central'] in column 1"
    )


def test_an_error_raised_from_one_it_restates_is_told_by_the_one_that_says_what_went_wrong() -> None:
    # statsmodels raises "predict requires that you use a DataFrame..." from patsy's own error, quoting it
    # below a formula that names every column: the caller hears patsy's reason, blamed on the right column
    import statsmodels.formula.api as smf

    training = pd.DataFrame(
        {"area": [50.0, 80.0, 120.0, 65.0], "district": ["north", "south", "north", "south"]}
    ).assign(price=[100.0, 150.0, 250.0, 120.0])
    results = smf.ols("price ~ area + C(district)", data=training).fit()
    rows = pd.DataFrame({"area": [70.0, 90.0], "district": ["north", "east"]})
    with pytest.raises(Exception, match="predict requires that you use a DataFrame") as failed:
        results.predict(rows)
    schema = InputSchema((Column("area", "double"), Column("district", "string")))
    assert describe_failure(schema, results.predict, rows, failed.value) == (
        "column 'district' row 1 (its value is one the model's error names): PatsyError: Error converting "
        "data to categorical: observation with value 'east' does not match any of the expected levels "
        "(expected: ['north', 'south'])"
    )
    # an error raised from another it does not restate keeps its own message
    try:
        try:
            raise KeyError("area")
        except KeyError as inner:
            raise ValueError("the model could not read its input") from inner
    except ValueError as outer:
        assert describe_failure(schema, results.predict, rows, outer).endswith(
            ": ValueError: the model could not read its input"
        )

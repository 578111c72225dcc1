"""Columns a model was fitted on as pandas categories, handed to it as those categories again.

LightGBM's documentation has a DataFrame's text columns made pandas ``category`` columns before fitting
(XGBoost's too, with ``enable_categorical=True``); the model records each one's categories and, predicting,
takes those columns as categories only (LightGBM: "train and valid dataset categorical_feature do not
match"; XGBoost: "DataFrame.dtypes for data must be int, float, bool or category"). MLflow's signature
calls them strings, and MLflow's server hands the model text, on which it fails. Here the model gets each
such column as the categories it was fitted on. A value it never saw is what the model makes of it in
its trainer's notebook: a missing value to LightGBM (which makes it so of a category column given a new
category); a category of its own to XGBoost, which answers or refuses it as it does there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["as_trained_categories", "categorical_booster", "trained_categories"]

# A column's categories, and whether a value outside them stays a category of its own (for the model to
# refuse) rather than become a missing value.
Categories = tuple[list[Any], bool]


def trained_categories(native: Any) -> dict[str, Categories]:
    """The columns a LightGBM or XGBoost model (its scikit-learn estimator or its booster) was fitted on as
    pandas categories, each with its categories in order; none for any other model, or one that does not
    tell them by column."""
    if hasattr(native, "get_booster") or hasattr(native, "get_categories"):
        return _xgboost(native.get_booster() if hasattr(native, "get_booster") else native)
    return _lightgbm(getattr(native, "booster_", native))


def categorical_booster(native: Any) -> Callable[..., Any] | None:
    """The predict of an XGBoost ``Booster`` (its own training API's model) on a table, as its trainer
    calls it: on a DMatrix that takes category columns (MLflow's makes one without, which refuses them),
    of the columns in the order the booster was fitted on where the table holds them all; None for any
    other model."""
    try:
        import xgboost as xgb
    except ImportError:
        return None
    if not isinstance(native, xgb.Booster):
        return None
    names = list(native.feature_names or ())

    def predict(data: Any, *_args: Any) -> Any:
        if names and set(names) <= set(getattr(data, "columns", ())):
            data = data[names]
        return native.predict(xgb.DMatrix(data, enable_categorical=True), validate_features=True)

    return predict


def _lightgbm(booster: Any) -> dict[str, Categories]:
    recorded = getattr(booster, "pandas_categorical", None)
    if not recorded or not hasattr(booster, "dump_model"):
        return {}
    try:
        infos = booster.dump_model(num_iteration=1).get("feature_infos") or {}  # one tree: cheap
    except Exception:  # a booster that cannot describe itself is served as it is
        return {}
    # A categorical feature lists the category codes it holds; a numeric one none.
    categorical = [str(name) for name, info in infos.items() if isinstance(info, dict) and info.get("values")]
    if len(categorical) != len(recorded):  # also given as codes (categorical_feature=): not told by name
        return {}
    return {name: (list(values), False) for name, values in zip(categorical, recorded, strict=True)}


def _xgboost(booster: Any) -> dict[str, Categories]:
    """XGBoost 3.1 and later keep the categories in the model; an earlier one reads a category column's
    codes as they come, which only the training's own categories would give: it is served as it is."""
    try:
        found = booster.get_categories(export_to_arrow=True).to_arrow() or []
    except Exception:  # before 3.1, or fitted on no categories
        return {}
    return {str(name): (array.to_pylist(), True) for name, array in found if array is not None}


def as_trained_categories(
    predict: Callable[..., Any], categories: dict[str, Categories]
) -> Callable[..., Any]:
    """``predict``, handed each column of ``categories`` in a table as those categories."""
    if not categories:
        return predict

    def answer(data: Any, *args: Any) -> Any:
        columns = getattr(data, "columns", None)
        if columns is not None:
            held = {
                name: _categorical(data[name], *told) for name, told in categories.items() if name in columns
            }
            if held:
                data = data.assign(**held)
        return predict(data, *args)

    return answer


def _categorical(values: Any, categories: list[Any], unseen_stay: bool) -> Any:
    import pandas as pd

    if unseen_stay:
        known = set(categories)
        categories = categories + sorted({v for v in values.dropna().tolist() if v not in known}, key=str)
    return pd.Categorical(values, categories=categories)

"""Categories a scikit-learn model refuses to meet: those its strict encoders were not fitted on.

A ``OneHotEncoder()`` or ``OrdinalEncoder()`` (``handle_unknown="error"``, their default) raises on a
category it never saw, naming its own column by number ("Found unknown categories ['central'] in column
1"), and MLflow's server answers 400. The request is what the model cannot take, so loopline answers 400
too, ``UNKNOWN_CATEGORY``, naming the request's column and row and the categories the model knows. The
encoders are found once, at load, where the request's values reach them unchanged: a pipeline's first
step, a column transformer's columns by name, through an imputer (which changes only missing values).
Nothing is checked until the model raises: a model that answers pays nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Guarded", "guarded_categories", "unseen_category"]

Guarded = dict[str, list[Any]]  # a column of the request: the categories a strict encoder knows there

_LISTED = 20


def guarded_categories(estimator: Any) -> Guarded:
    """The request's columns that a strict encoder of ``estimator`` reads as they come, each with the
    categories it was fitted on; none where it has no such encoder or does not tell its columns."""
    found: Guarded = {}
    try:
        _walk(estimator, [], found)
    except Exception:  # an estimator of another shape than scikit-learn's: nothing to check
        return {}
    return found


def _walk(step: Any, columns: list[str], found: Guarded) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if isinstance(step, Pipeline):  # its first step, and past imputers the one after
        for _, inner in step.steps:
            if inner is None or inner == "passthrough":
                continue
            _walk(inner, columns, found)
            if not isinstance(inner, SimpleImputer) or inner.add_indicator:
                return
    elif isinstance(step, ColumnTransformer):
        for _, inner, selected in getattr(step, "transformers_", ()):
            names = [selected] if isinstance(selected, str) else selected
            if isinstance(names, list) and all(isinstance(name, str) for name in names):
                _walk(inner, names, found)
    elif isinstance(step, OneHotEncoder | OrdinalEncoder) and step.handle_unknown == "error":
        _encoder(step, columns, found)


def _encoder(encoder: Any, columns: list[str], found: Guarded) -> None:
    """A strict encoder's categories, by the names of the columns it was fitted on (its own, where it was
    fitted on a table, else those its column transformer gave it)."""
    named = getattr(encoder, "feature_names_in_", None)
    names = [str(name) for name in named] if named is not None else columns
    categories = getattr(encoder, "categories_", None)
    if categories is not None and names and len(names) == len(categories):
        for name, known in zip(names, categories, strict=True):
            found[name] = [value for value in known.tolist() if not _missing(value)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def unseen_category(guarded: Guarded, data: Any, first_row: int = 0) -> str | None:
    """Why the model cannot take ``data`` (a table): the first of its guarded columns holding a category
    the model was not fitted on, with the row (numbered from ``first_row``); None where every value is one
    it knows (or missing)."""
    if not guarded or not hasattr(data, "columns"):
        return None
    for column, known in guarded.items():
        if column not in data.columns:
            continue
        values = data[column]
        rows = np.flatnonzero(values.notna().to_numpy() & ~values.isin(known).to_numpy())
        if rows.size:
            listed = sorted(map(str, known))
            more = f" and {len(listed) - _LISTED} more" if len(listed) > _LISTED else ""
            row = first_row + int(rows[0])
            return (
                f"column '{column}' row {row:,}: a category the model was not fitted on (it knows "
                f"{', '.join(listed[:_LISTED])}{more}): give one of those, or retrain the model knowing it "
                "(or with handle_unknown='ignore' on its encoder)"
            )
    return None

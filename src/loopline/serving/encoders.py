"""Categories a scikit-learn model refuses to meet: those its strict encoders were not fitted on.

A ``OneHotEncoder()`` or ``OrdinalEncoder()`` (``handle_unknown="error"``, their default) raises on a
category it never saw, naming its own column by number ("Found unknown categories ['central'] in column
1"), and MLflow's server answers 400. The request is what the model cannot take, so loopline answers 400
too, ``UNKNOWN_CATEGORY``, naming the request's column and row and the categories the model knows. The
encoders are found once, at load, where the request's values reach them unchanged: a pipeline's first
step, a column transformer's columns by name, through an imputer (which changes only missing values).
Nothing is checked until the model raises: a model that answers pays nothing.

A statsmodels model fitted by a formula (``price ~ area + C(district)``) is as strict: patsy encodes only
the levels of the rows it was fitted on, and a new one fails the model ("observation with value 'east'
does not match any of the expected levels"). Its formula's categorical factors are read the same way.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["Guarded", "formula_categories", "guarded_categories", "unseen_category"]


class Guarded(dict[str, list[Any]]):
    """A column of the request: the categories a strict encoder knows there; ``fix``: what else takes a
    new one than retraining the model knowing it."""

    fix = "or with handle_unknown='ignore' on its encoder"


_LISTED = 20


def guarded_categories(estimator: Any) -> Guarded:
    """The request's columns that a strict encoder of ``estimator`` reads as they come, each with the
    categories it was fitted on; none where it has no such encoder or does not tell its columns."""
    found = Guarded()
    try:
        _walk(estimator, [], found)
    except Exception:  # an estimator of another shape than scikit-learn's: nothing to check
        return Guarded()
    return found


# A factor of a formula that reads one column as it comes: ``district``, ``C(district)``,
# ``C(district, Treatment('north'))``, ``Q('Living area')``, ``C(Q('Living area'))``.
_FACTOR = re.compile(
    r"""(?:C\(\s*)?(?:Q\(\s*(['"])(?P<quoted>.+?)\1\s*\)|(?P<name>[A-Za-z_]\w*))\s*(?:[,)].*)?"""
)


def formula_categories(results: Any) -> Guarded:
    """The request's columns that a statsmodels model fitted by a formula reads as categories (patsy's
    categorical factors of a single column), each with the categories the formula was fitted on; none for
    a model fitted without a formula, or by another formula engine than patsy."""
    found = Guarded()
    found.fix = "a formula encodes only the levels of the rows it was fitted on"
    try:
        model = results.model
        spec = getattr(model, "model_spec", None) or model.data.model_spec
        for factor, info in spec.factor_infos.items():
            matched = _FACTOR.fullmatch(factor.name())
            if info.type == "categorical" and matched is not None:
                found[matched["quoted"] or matched["name"]] = list(info.categories)
    except Exception:  # no formula, or another engine's description of it: nothing to check
        return Guarded()
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


def unseen_category(guarded: dict[str, list[Any]], data: Any, first_row: int = 0) -> str | None:
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
                f"({getattr(guarded, 'fix', Guarded.fix)})"
            )
    return None

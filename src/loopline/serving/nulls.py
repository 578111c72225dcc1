"""Nulls in a model's text columns as the model was trained on them.

MLflow's server hands a model a JSON null in a text column as None, and an empty CSV cell as NaN; pandas
reads a missing text from a CSV or Parquet file as NaN, so most models were trained on NaN there. A
pipeline whose imputer or encoder was fitted on NaN fails on None ("Found unknown categories [None]").
Such a model, once it fails on a table holding None in a text column and answers the same table with NaN
there, gets NaN from then on; every other model gets None, as from MLflow's server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["texts_missing_as_trained"]


def texts_missing_as_trained(predict: Callable[..., Any], texts: Sequence[str]) -> Callable[..., Any]:
    """``predict``, retried once with NaN for None in the columns ``texts`` where it fails on None there;
    where the retry answers, every later table gets NaN there at once."""
    if not texts:
        return predict
    learned = [False]  # set once, never unset: a benign race between threads

    def answer(data: Any, *args: Any) -> Any:
        if learned[0]:
            held = _nan_for_none(data, texts)
            return predict(data if held is None else held, *args)
        try:
            return predict(data, *args)
        except Exception as exc:
            held = _nan_for_none(data, texts)
            if held is None:
                raise
            failed = exc
        try:
            answers = predict(held, *args)
        except Exception:
            raise failed from None
        learned[0] = True
        return answers

    return answer


def _nan_for_none(data: Any, texts: Sequence[str]) -> Any:
    """A copy of the table ``data`` with NaN for each None in its columns ``texts``; None where it holds
    none there (or is no table)."""
    columns = getattr(data, "columns", None)
    if columns is None:
        return None
    changed = {}
    for name in texts:
        if name in columns and data[name].dtype == object:
            values = data[name]
            nones = np.fromiter((value is None for value in values.tolist()), bool, len(values))
            if nones.any():
                changed[name] = values.mask(nones, np.nan)
    return data.assign(**changed) if changed else None

"""XGBoost and LightGBM models, predicted by treelite's inference library (GTIL) as their own predict does.

Read through treelite's frontends (``from_xgboost``, ``from_lightgbm``); kept, like the scikit-learn
ensembles of ``trees.py``, only when they answer the probe bit for bit (``compiled.py``). What matched on
measurement: the classes of ``XGBClassifier`` and ``LGBMClassifier`` (from GTIL's probabilities), the
values of ``LGBMRegressor`` and of a LightGBM ``Booster`` for binary and regression objectives, and the
values of ``XGBRegressor`` (or an XGBoost ``Booster``) with an identity link, once its trees are added in
float32 to its base score in order, as XGBoost does. Probabilities XGBoost computes itself differ in the
last bit, so those models keep their own predict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["booster_answer", "unhandled"]

Answer = Callable[[np.ndarray, int], np.ndarray]
Labels = Callable[[Any, np.ndarray | None], Answer]

_IDENTITY = frozenset({"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror"})


def booster_answer(model: Any, labels: Labels) -> tuple[Answer, type[np.floating[Any]]] | None:
    """GTIL's answer for an XGBoost or LightGBM model and the dtype it takes its rows in; None for any
    other model, or one of those not handled here. ``labels`` makes the classes from GTIL's output."""
    kind = type(model)
    if kind.__module__.startswith("xgboost"):
        return _xgboost(model, kind.__name__, labels)
    if kind.__module__.startswith("lightgbm"):
        return _lightgbm(model, kind.__name__, labels)
    return None


def unhandled(model: Any) -> str | None:
    """Why an XGBoost model has no compiled form here, or None (for anything else)."""
    kind = type(model)
    if not kind.__module__.startswith("xgboost") or kind.__name__ not in {"XGBRegressor", "Booster"}:
        return None
    booster = model if kind.__name__ == "Booster" else model.get_booster()
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    if objective in _IDENTITY:
        return None
    return f"no compiled form for XGBoost's {kind.__name__} with objective {objective}: XGBoost's own link"


def _xgboost(model: Any, name: str, labels: Labels) -> tuple[Answer, type[np.floating[Any]]] | None:
    import treelite

    if name not in {"XGBClassifier", "XGBRegressor", "Booster"}:
        return None
    booster = model if name == "Booster" else model.get_booster()
    compiled = treelite.frontend.from_xgboost(booster)
    if name == "XGBClassifier":
        classes = getattr(model, "classes_", None)
        return None if classes is None else (labels(compiled, classes), np.float32)
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    base = json.loads(compiled.dump_as_json(pretty_print=False)).get("base_scores", [])
    if objective not in _IDENTITY or len(base) != 1:
        return None  # a link function applied after the sum, or several outputs: XGBoost's own predict
    start = np.float32(base[0])

    def values(rows: np.ndarray, threads: int) -> np.ndarray:
        trees = treelite.gtil.predict_per_tree(compiled, rows, nthread=threads).reshape(len(rows), -1)
        column = np.full((len(rows), 1), start, dtype=np.float32)
        summed: np.ndarray = np.cumsum(
            np.hstack([column, trees.astype(np.float32)]), axis=1, dtype=np.float32
        )
        return summed[:, -1]

    return values, np.float32


def _lightgbm(model: Any, name: str, labels: Labels) -> tuple[Answer, type[np.floating[Any]]] | None:
    import treelite

    if name not in {"LGBMClassifier", "LGBMRegressor", "Booster"}:
        return None
    compiled = treelite.frontend.from_lightgbm(model if name == "Booster" else model.booster_)
    return labels(compiled, model.classes_ if name == "LGBMClassifier" else None), np.float64

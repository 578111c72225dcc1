"""The columns an XGBoost or LightGBM booster was fitted on, read from the file MLflow saved it in.

MLflow's autolog of XGBoost's and LightGBM's own training APIs (``xgb.train``, ``lgb.train``) logs no
input example by default, and without one no signature: the booster's file still names its features. It
is read as data (XGBoost's JSON or UBJSON, LightGBM's text format); no code of the model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["booster_columns"]

_MOST_BYTES = 64 << 20  # a larger model file is not read for its names
_LONGEST_LINE = 4 << 20  # LightGBM's feature_names= line: longer ones are not read whole


def booster_columns(folder: Path, flavors: dict[str, Any]) -> list[str]:
    """The feature names of the booster in ``folder`` (a model of MLflow's xgboost or lightgbm flavor,
    whose MLmodel lists ``flavors``); none for another model, a scikit-learn estimator of theirs (saved as
    a pickle), or a booster fitted on an array."""
    xgboost, lightgbm = flavors.get("xgboost") or {}, flavors.get("lightgbm") or {}
    if str(xgboost.get("model_class", "")).endswith(".Booster") and xgboost.get("data"):
        return _xgboost(folder / str(xgboost["data"]))
    if str(lightgbm.get("model_class", "")).endswith(".Booster") and lightgbm.get("data"):
        return _lightgbm(folder / str(lightgbm["data"]))
    return []


def _xgboost(path: Path) -> list[str]:
    try:
        import xgboost as xgb

        if path.stat().st_size > _MOST_BYTES:
            return []
        booster = xgb.Booster()
        booster.load_model(str(path))
        return [str(name) for name in booster.feature_names or ()]
    except Exception:  # no XGBoost here, or a file it cannot read: nothing told
        return []


def _lightgbm(path: Path) -> list[str]:
    """The ``feature_names=`` line of LightGBM's text format (among the first lines of the file); no line
    is read past ``_LONGEST_LINE`` characters, so a file of one endless line costs no more than that."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as text:
            for _ in range(50):
                line = text.readline(_LONGEST_LINE)
                if not line:
                    return []
                if line.startswith("feature_names="):
                    whole = line.endswith("\n") or len(line) < _LONGEST_LINE
                    return line.removeprefix("feature_names=").split() if whole else []
                while not line.endswith("\n") and line:  # the rest of an overlong line, unkept
                    line = text.readline(_LONGEST_LINE)
    except OSError:
        return []
    return []

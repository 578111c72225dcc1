"""Fitted scikit-learn tree ensembles, predicted by treelite's inference library (GTIL).

scikit-learn predicts a forest tree by tree through Python-level dispatch: about 8 ms for one row of a
200-tree forest, barely more for 32 rows. GTIL walks the same trees in compiled code in a tenth of a
millisecond for one row; on large batches scikit-learn's vectorised predict catches up. So a compiled
ensemble serves the batches it is faster for, measured when the model loads, and the estimator's own
predict the rest. As for the linear path, the caller keeps it only when it answers a probe bit for bit
as the estimator does (``compiled.py``); rows with missing values go to the estimator itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["fastest", "tree_step"]

Step = Callable[[np.ndarray], np.ndarray]

_ENSEMBLES = frozenset(
    {
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    }
)


def tree_step(model: Any) -> Step | None:
    """GTIL's predict for a fitted scikit-learn ensemble, as labels or values like ``model.predict``;
    None for anything else, or where treelite is missing or cannot read the model."""
    kind = type(model)
    if kind.__name__ not in _ENSEMBLES or not kind.__module__.startswith("sklearn.ensemble"):
        return None
    try:
        import treelite
        import treelite.sklearn

        compiled = treelite.sklearn.import_model(model)
    except Exception:  # not installed, or a model it does not read: the estimator serves
        return None
    classes = getattr(model, "classes_", None)
    estimator_predict = model.predict

    def predict(x: np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32)  # as scikit-learn's trees take their input
        if np.isnan(rows).any():
            return np.asarray(estimator_predict(x))  # missing values: as the estimator treats them
        out = treelite.gtil.predict(compiled, rows, nthread=1)
        if classes is None:
            return np.asarray(out.reshape(len(rows)), dtype=np.float64)
        scores = out.reshape(len(rows), -1)
        picked = (scores[:, 0] > 0.5).astype(np.intp) if scores.shape[1] == 1 else np.argmax(scores, axis=1)
        answer: np.ndarray = classes.take(picked, axis=0)
        return answer

    return predict


def _seconds(predict: Callable[[np.ndarray], Any], rows: np.ndarray) -> float:
    """The best of three timings of ``predict(rows)``."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        predict(rows)
        best = min(best, time.perf_counter() - started)
    return best


def fastest(
    compiled: Step, own: Callable[[np.ndarray], Any], probe: np.ndarray, largest: int = 1024
) -> tuple[Step, str] | None:
    """One predict that sends each batch to whichever of ``compiled`` and ``own`` was faster for a batch
    of its size, measured here on rows of ``probe``, and what it does; None when ``own`` always was."""
    rows = probe[np.arange(largest) % len(probe)]
    limit = 0
    for size in (1, 8, 32, 128, 512, largest):
        if _seconds(compiled, rows[:size]) > _seconds(own, rows[:size]):
            break
        limit = size
    if limit == 0:
        return None
    if limit == largest:
        return compiled, "treelite: every batch (faster at every size measured at load)"

    def predict(x: np.ndarray) -> np.ndarray:
        return compiled(x) if len(x) <= limit else np.asarray(own(x))

    return predict, f"treelite for batches of up to {limit} rows, the estimator above (measured at load)"

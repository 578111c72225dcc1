"""Fitted scikit-learn pipelines of scalers and a linear model, predicted with numpy alone.

scikit-learn's own ``predict`` re-validates its input at every step (about 0.25 ms a call whatever the
batch size); the arithmetic of a scaler and a linear model is a few microseconds. For estimators of exactly
the classes listed here, :func:`compile_predict` builds the same arithmetic, in the same order, from the
fitted attributes, and keeps it only when it answers a probe of rows bit for bit as the estimator does.
Anything else is served by the estimator's own ``predict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["compile_predict"]

Step = Callable[[np.ndarray], np.ndarray]

_LINEAR_CLASSIFIERS = frozenset(
    {"LogisticRegression", "RidgeClassifier", "LinearSVC", "SGDClassifier", "Perceptron"}
)
_LINEAR_REGRESSORS = frozenset(
    {"LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDRegressor", "LinearSVR", "HuberRegressor"}
)


def _is(estimator: Any, name: str, module: str) -> bool:
    kind = type(estimator)
    return kind.__name__ == name and kind.__module__.startswith(module)


def _scaler(step: Any) -> Step | None:
    if _is(step, "StandardScaler", "sklearn.preprocessing"):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standardize(x: np.ndarray) -> np.ndarray:
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
            return x

        return standardize
    if _is(step, "MinMaxScaler", "sklearn.preprocessing"):
        factor, offset, clip = step.scale_, step.min_, step.clip
        low, high = step.feature_range

        def min_max(x: np.ndarray) -> np.ndarray:
            x = x * factor + offset
            return np.clip(x, low, high) if clip else x

        return min_max
    if step is None or step == "passthrough":
        return lambda x: x
    return None


def _linear(model: Any) -> Step | None:
    kind = type(model)
    if not kind.__module__.startswith("sklearn.linear_model") and not kind.__module__.startswith(
        "sklearn.svm"
    ):
        return None
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if not isinstance(coef, np.ndarray) or intercept is None:
        return None
    weights = coef.T if coef.ndim == 2 else coef
    if kind.__name__ in _LINEAR_REGRESSORS:
        return lambda x: x @ weights + intercept
    if kind.__name__ in _LINEAR_CLASSIFIERS:
        classes = model.classes_

        def classify(x: np.ndarray) -> np.ndarray:
            scores = x @ weights + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)
            answer: np.ndarray = classes.take(indices, axis=0)
            return answer

        return classify
    return None


def _chain(estimator: Any) -> list[Step] | None:
    if _is(estimator, "Pipeline", "sklearn.pipeline"):
        steps = [_scaler(step) for _, step in estimator.steps[:-1]]
        final = _linear(estimator.steps[-1][1])
        if final is None or any(step is None for step in steps):
            return None
        return [*(step for step in steps if step is not None), final]
    final = _linear(estimator)
    return None if final is None else [final]


def _probe(example: np.ndarray, rows: int = 64) -> np.ndarray:
    """Rows around ``example``: itself, zeros, and seeded noise at the scale of its values."""
    generator = np.random.default_rng(0)
    base = example[np.arange(rows) % example.shape[0]]
    noise = generator.normal(size=base.shape) * (np.abs(base) + 1.0)
    return np.concatenate([example, np.zeros((1, example.shape[1])), base + noise])


def compile_predict(estimator: Any, example: np.ndarray) -> Step | None:
    """A numpy function predicting as ``estimator.predict`` does, or None when there is none to trust."""
    steps = _chain(estimator)
    if steps is None or example.ndim != 2 or example.shape[0] == 0:
        return None

    def predict(x: np.ndarray) -> np.ndarray:
        for step in steps:
            x = step(x)
        return x

    probe = _probe(example)
    try:
        expected = np.asarray(estimator.predict(probe))
        got = predict(probe)
    except Exception:  # the estimator is not what its class says: keep its own predict
        return None
    if got.dtype != expected.dtype or not np.array_equal(got, expected):
        return None
    return predict

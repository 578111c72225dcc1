"""Fitted scikit-learn pipelines of scalers and a linear model, predicted with numpy alone, or of scalers
and a tree ensemble, predicted by treelite (``trees.py``).

scikit-learn's own ``predict`` re-validates its input at every step (about 0.25 ms a call whatever the
batch size); the arithmetic of a scaler and a linear model is a few microseconds. For estimators of exactly
the classes listed here, :func:`compile_predict` builds the same arithmetic, in the same order, from the
fitted attributes, and keeps it only when it answers a probe of rows bit for bit as the estimator does.
Anything else is served by the estimator's own ``predict``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

from loopline import children
from loopline.serving.trees import Step, fastest, split_rows, tree_step

__all__ = ["OWN", "Compiled", "compile_or_say_why", "compile_predict"]

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


def _final(model: Any, own: Step | None = None) -> tuple[Step, str] | None:
    linear = _linear(model)
    if linear is not None:
        return linear, "numpy"
    trees = tree_step(model, own)
    return None if trees is None else (trees, "treelite")


def _chain(estimator: Any, own: Step | None) -> tuple[list[Step], Any, str] | None:
    """The steps of ``estimator``, its final estimator and what predicts that one (numpy or treelite); None
    when a step is of a class not handled here."""
    if _is(estimator, "Pipeline", "sklearn.pipeline"):
        steps = [_scaler(step) for _, step in estimator.steps[:-1]]
        last = estimator.steps[-1][1]
        final = _final(last)
        if final is None or any(step is None for step in steps):
            return None
        return [*(step for step in steps if step is not None), final[0]], last, final[1]
    final = _final(estimator, own)
    return None if final is None else ([final[0]], estimator, final[1])


def _what_is_not_compiled(estimator: Any) -> str:
    if _is(estimator, "Pipeline", "sklearn.pipeline"):
        steps = [step for _, step in estimator.steps[:-1] if _scaler(step) is None]
        if steps:
            return f"no compiled form for the pipeline step {type(steps[0]).__name__}"
        estimator = estimator.steps[-1][1]
    try:
        from loopline.serving.boosters import unhandled

        reason = unhandled(estimator)
    except Exception:  # a model that cannot say: name its class
        reason = None
    return reason or f"no compiled form for {type(estimator).__name__}"


def _answers_alike(got: Any, expected: Any) -> bool:
    return bool(got.dtype == expected.dtype and np.array_equal(got, expected))


@dataclass(frozen=True)
class Compiled:
    """A predict function that answers as the estimator's own, and how it does (for the deployment's info)."""

    predict: Step
    path: str
    off_loop: Callable[[int], bool] | None = (
        None  # whether a batch of so many rows is best predicted off the loop
    )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.predict(x)


def _probe(example: np.ndarray, rows: int = 64) -> np.ndarray:
    """Rows around ``example``: itself, zeros, and seeded noise at the scale of its values."""
    generator = np.random.default_rng(0)
    base = example[np.arange(rows) % example.shape[0]]
    noise = generator.normal(size=base.shape) * (np.abs(base) + 1.0)
    return np.concatenate([example, np.zeros((1, example.shape[1])), base + noise])


OWN = "the model's own predict"


def compile_predict(estimator: Any, example: np.ndarray) -> Compiled | None:
    """A function predicting as ``estimator.predict`` does, or None when there is none to trust."""
    compiled, _why = compile_or_say_why(estimator, example)
    return compiled


def compile_or_say_why(
    estimator: Any, example: np.ndarray, own: Step | None = None
) -> tuple[Compiled | None, str]:
    """A function predicting as ``own`` does (by default ``estimator.predict``: the model's predict on a
    float matrix), or None and why the model's own predict serves."""
    chain = _chain(estimator, own)
    own = estimator.predict if own is None else own
    if chain is None:
        return None, f"{OWN} ({_what_is_not_compiled(estimator)})"
    if example.ndim != 2 or example.shape[0] == 0:
        return None, f"{OWN} (no input example to check a compiled form against)"
    steps, final, engine = chain

    def predict(x: np.ndarray) -> np.ndarray:
        for step in steps:
            x = step(x)
        return x

    probe = _probe(example)
    failure = _probe_failure(predict, own, (steps, final, engine), probe)
    if failure:
        return None, f"{OWN} ({failure})"
    if engine == "numpy":
        return Compiled(predict, "numpy: the fitted arithmetic, exactly as the estimator's predict"), ""
    single, parallel = _thread_counts(steps)
    expected = np.asarray(own(probe))  # every thread count must answer as the model, too
    parallel = {name: walk for name, walk in parallel.items() if _answers_alike(walk(probe), expected)}
    chosen = fastest(single, own, probe, parallel)
    if chosen is None:
        return None, f"{OWN} (faster than treelite at every batch size measured at load)"
    return Compiled(chosen.predict, chosen.path, chosen.off_loop), ""


def _thread_counts(steps: list[Step]) -> tuple[dict[str, Step], dict[str, Step]]:
    """The compiled chain walking its trees on one thread, and on every core where there are several."""
    scalers, trees = steps[:-1], steps[-1]

    def on(threads: int) -> Step:
        def predict(x: np.ndarray) -> np.ndarray:
            for step in scalers:
                x = step(x)
            return trees(x, threads=threads)  # type: ignore[call-arg]

        return predict

    cores = _cores()
    parallel = {f"treelite ({cores} threads)": on(cores)} if cores > 1 else {}
    return {"treelite": on(1)}, parallel


def _cores() -> int:
    """The threads a tree walk may use: the cores this process may use, within OpenMP's limit
    (``OMP_NUM_THREADS``, usual in containers and set for each worker of ``serve --workers N``, or a limit
    the process set itself), which treelite refuses to exceed."""
    cores = children.cores()
    openmp = [int(pool["num_threads"]) for pool in threadpool_info() if pool.get("user_api") == "openmp"]
    return max(1, min([cores, *openmp]))


def _probe_failure(
    predict: Step, own: Step, chain: tuple[list[Step], Any, str], probe: np.ndarray
) -> str | None:
    """Why ``predict`` cannot stand for ``own``, judged on the probe rows (and, for trees, the rows at
    their split thresholds); None when it answers them all bit for bit."""
    steps, final, engine = chain
    try:
        alike = _answers_alike(predict(probe), np.asarray(own(probe)))
        if alike and engine == "treelite":
            alike = _alike_at_the_splits(steps, final, probe)
    except Exception:  # the estimator is not what its class says: keep its own predict
        return f"its {engine} form failed on the probe rows"
    return None if alike else f"its {engine} form does not answer the probe rows bit for bit"


def _alike_at_the_splits(steps: list[Step], final: Any, probe: np.ndarray) -> bool:
    """Whether the compiled trees answer as the ensemble itself on rows at (and just beside) its split
    thresholds, given as the ensemble sees its input (after the pipeline's scalers)."""
    seen = probe
    for step in steps[:-1]:
        seen = step(seen)
    edges = split_rows(final, np.asarray(seen, dtype=np.float64))
    return edges is None or _answers_alike(steps[-1](edges), np.asarray(final.predict(edges)))

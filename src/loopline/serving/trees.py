"""Fitted scikit-learn tree ensembles, predicted by treelite's inference library (GTIL).

scikit-learn predicts a forest tree by tree through Python-level dispatch: about 8 ms for one row of a
200-tree forest, barely more for 32 rows. GTIL walks the same trees in compiled code in a tenth of a
millisecond for one row; on large batches scikit-learn's vectorised predict catches up. So a compiled
ensemble serves the batches it is faster for, measured when the model loads, and the estimator's own
predict the rest. As for the linear path, the caller keeps it only when it answers a probe bit for bit
as the estimator does (``compiled.py``); rows with missing values go to the estimator itself.

Forests average their trees, which GTIL does as scikit-learn does. Boosted ensembles add their trees to a
starting score one after another, and floating-point addition depends on its order; so for those GTIL
gives each tree's output and the sum is taken here in scikit-learn's order (a cumulative sum, which numpy
computes strictly left to right), from the same starting score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Choice", "Step", "fastest", "split_rows", "tree_step"]

Step = Callable[[np.ndarray], np.ndarray]

_FORESTS = frozenset(
    {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"}
)
_BOOSTED = frozenset({"GradientBoostingClassifier", "GradientBoostingRegressor"})
_HISTOGRAM = frozenset({"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"})


def _kind(model: Any) -> str:
    kind = type(model)
    if not kind.__module__.startswith("sklearn.ensemble"):
        return ""
    return kind.__name__ if kind.__name__ in _FORESTS | _BOOSTED | _HISTOGRAM else ""


def tree_step(model: Any, own: Callable[[np.ndarray], Any] | None = None) -> Callable[..., np.ndarray] | None:
    """GTIL's predict for a fitted tree ensemble (scikit-learn's, or XGBoost's or LightGBM's, see
    ``boosters.py``), as labels or values like ``own`` (by default ``model.predict``), walking the rows on
    ``threads`` threads (each row on one, so its sum is taken in the same order); None for anything else,
    or where treelite is missing or cannot read the model."""
    estimator_predict = model.predict if own is None else own
    try:
        found = _answer(model, estimator_predict)
    except Exception:  # treelite not installed, or a model it does not read: the estimator serves
        return None
    if found is None:
        return None
    answer, dtype = found

    def predict(x: np.ndarray, threads: int = 1) -> np.ndarray:
        rows = np.asarray(x, dtype=dtype)
        if np.isnan(rows).any():
            return np.asarray(estimator_predict(x))  # missing values: as the estimator treats them
        return answer(rows, threads)

    return predict


def _answer(model: Any, own: Callable[[np.ndarray], Any]) -> tuple[Answer, type[np.floating[Any]]] | None:
    kind = _kind(model)
    if not kind:
        from loopline.serving.boosters import booster_answer

        return booster_answer(model, lambda compiled, classes: _forest(compiled, classes, own))
    import treelite.sklearn

    compiled = treelite.sklearn.import_model(model)
    answer = (
        _forest(compiled, getattr(model, "classes_", None))
        if kind in _FORESTS
        else _boosted(compiled, model, kind)
    )
    if answer is None:
        return None
    return answer, np.float64 if kind in _HISTOGRAM else np.float32  # as each ensemble takes its input


Answer = Callable[[np.ndarray, int], np.ndarray]


NEAR = 1e-6  # probabilities this close to a decision are left to the model itself


def _forest(
    compiled: Any, classes: np.ndarray | None, own: Callable[[np.ndarray], Any] | None = None
) -> Answer:
    """Values, or classes from GTIL's probabilities. With ``own`` (for XGBoost and LightGBM, whose
    sigmoid and softmax treelite computes with another exp), a row whose probability is within NEAR of
    the decision (0.5, or a tie with the runner-up class) is answered by ``own``: only there can a
    probability that differs in the last bit change the class. A forest's probabilities are averages
    that GTIL takes as scikit-learn does."""
    import treelite

    def predict(rows: np.ndarray, threads: int) -> np.ndarray:
        out = treelite.gtil.predict(compiled, rows, nthread=threads)
        if classes is None:
            return np.asarray(out.reshape(len(rows)), dtype=np.float64)
        scores = out.reshape(len(rows), -1)
        binary = scores.shape[1] == 1
        picked = (scores[:, 0] > 0.5).astype(np.intp) if binary else np.argmax(scores, axis=1)
        answer: np.ndarray = classes.take(picked, axis=0)
        if own is not None:
            top = np.partition(scores, -2, axis=1) if not binary else None
            near = np.abs(scores[:, 0] - 0.5) < NEAR if top is None else top[:, -1] - top[:, -2] < NEAR
            if near.any():
                answer[near] = np.asarray(own(rows[near]))
        return answer

    return predict


def _boosted(compiled: Any, model: Any, kind: str) -> Answer | None:
    """Labels or values from the boosted trees' raw score, each step as the estimator's predict takes it."""
    import treelite

    start = _starting_score(model, kind)
    if start is None:
        return None
    per_class = start.shape[1]

    def raw(rows: np.ndarray, threads: int) -> np.ndarray:
        trees = treelite.gtil.predict_per_tree(compiled, rows, nthread=threads).reshape(len(rows), -1)
        total = np.empty((len(rows), per_class), dtype=np.float64)
        for k in range(per_class):
            column = np.broadcast_to(start[:, k : k + 1], (len(rows), 1))
            total[:, k] = np.cumsum(np.hstack([column, trees[:, k::per_class]]), axis=1)[:, -1]
        return total

    if kind == "GradientBoostingRegressor":
        return lambda rows, threads: raw(rows, threads).ravel()
    if kind == "HistGradientBoostingRegressor":
        inverse = model._loss.link.inverse
        return lambda rows, threads: np.asarray(inverse(raw(rows, threads).ravel()))
    classes = model.classes_
    at_zero = kind == "GradientBoostingClassifier"  # its binary rule is ">= 0", the histogram one's "> 0"

    def classify(rows: np.ndarray, threads: int) -> np.ndarray:
        scores = raw(rows, threads)
        if per_class == 1:
            picked = (scores[:, 0] >= 0) if at_zero else (scores[:, 0] > 0)
            indices = picked.astype(np.intp)
        else:
            indices = np.argmax(scores, axis=1)
        answer: np.ndarray = classes.take(indices, axis=0)
        return answer

    return classify


def _starting_score(model: Any, kind: str) -> np.ndarray | None:
    """The score the trees are added to, one row of it, when it is the same for every input row."""
    if kind in _HISTOGRAM:
        return np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, -1)
    init = model.init_
    if not (init == "zero" or type(init).__name__ in {"DummyRegressor", "DummyClassifier"}):
        return None  # an initial estimator of the user's: its score depends on the row
    zeros = np.zeros((1, model.n_features_in_), dtype=np.float32)
    return np.asarray(model._raw_predict_init(zeros), dtype=np.float64)


def split_rows(model: Any, base: np.ndarray, limit: int = 256) -> np.ndarray | None:
    """Rows of ``base`` with one feature set exactly at one of the ensemble's split thresholds, and just
    either side of it: where a compiled form that rounds or compares differently would answer otherwise.
    None for a model that is not a supported ensemble."""
    kind = _kind(model)
    if not kind or base.ndim != 2 or len(base) == 0:
        return None
    pairs = _splits(model, kind)
    if len(pairs) == 0:
        return None
    picked = pairs[np.random.default_rng(0).permutation(len(pairs))[:limit]]
    rows = np.repeat(base[np.arange(len(picked)) % len(base)].astype(np.float64), 3, axis=0)
    features = picked[:, 0].astype(np.intp)
    thresholds = picked[:, 1]
    dtype = np.float64 if kind in _HISTOGRAM else np.float32
    at = thresholds.astype(dtype)
    values = np.stack([at, np.nextafter(at, dtype(-np.inf)), np.nextafter(at, dtype(np.inf))], axis=1)
    rows[np.arange(len(rows)), np.repeat(features, 3)] = values.reshape(-1).astype(np.float64)
    return rows


def _splits(model: Any, kind: str) -> np.ndarray:
    """(feature, threshold) of every split in the ensemble."""
    found: list[np.ndarray] = []
    if kind in _HISTOGRAM:
        for predictor in (p for iteration in model._predictors for p in iteration):
            nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            found.append(np.stack([nodes["feature_idx"], nodes["num_threshold"]], axis=1))
    else:
        for tree in (e.tree_ for e in np.asarray(model.estimators_).ravel()):
            inner = tree.feature >= 0
            found.append(np.stack([tree.feature[inner], tree.threshold[inner]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2))


def _seconds(predict: Callable[[np.ndarray], Any], rows: np.ndarray) -> float:
    """The best of three timings of ``predict(rows)``."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        predict(rows)
        best = min(best, time.perf_counter() - started)
    return best


SIZES = (1, 8, 32, 128, 512, 2048)
PARALLEL_ROWS = 512
SLOW_SECONDS = 0.002  # a treelite batch measured slower than this is predicted off the event loop


@dataclass(frozen=True)
class Choice:
    """Which predictor answers batches of each size, as measured at load."""

    predict: Step
    path: str
    off_loop: Callable[[int], bool] | None  # whether a batch of so many rows is best predicted off the loop


def fastest(
    candidates: dict[str, Step],
    own: Callable[[np.ndarray], Any],
    probe: np.ndarray,
    parallel: dict[str, Step],
) -> Choice | None:
    """One predict that sends each batch to whichever of ``candidates``, ``parallel`` (only for batches of
    PARALLEL_ROWS or more: on smaller ones the other workers' requests need the cores more) and ``own``
    (the estimator's predict) was fastest for a batch of its size, measured here on rows of ``probe``;
    None when ``own`` always was."""
    rows = probe[np.arange(SIZES[-1]) % len(probe)]
    everyone: dict[str, Callable[[np.ndarray], Any]] = {**candidates, **parallel, OWN_NAME: own}
    best: list[tuple[float, str]] = []
    for size in SIZES:
        names = [name for name in everyone if size >= PARALLEL_ROWS or name not in parallel]
        best.append(min((_seconds(everyone[name], rows[:size]), name) for name in names))
    if all(name == OWN_NAME for _, name in best):
        return None
    # Off the event loop: batches treelite answers (it releases the GIL) in more than SLOW_SECONDS. The
    # estimator's own predict stays on the loop: scikit-learn's per-tree dispatch holds the GIL, and
    # sharing it with the loop's thread measured slower.
    slow = [name != OWN_NAME and seconds > SLOW_SECONDS for seconds, name in best]
    limits = np.array(SIZES[:-1])
    chosen = [everyone[name] for _, name in best]

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(chosen[int(np.searchsorted(limits, len(x)))](x))

    def off_loop(rows: int) -> bool:
        return slow[int(np.searchsorted(limits, rows))]

    return Choice(predict, _describe([name for _, name in best]), off_loop if any(slow) else None)


OWN_NAME = "the estimator"


def _describe(names: list[str]) -> str:
    """'treelite (1 thread) up to 32 rows, the estimator above', from the choice at each size."""
    runs: list[tuple[str, int]] = []
    for size, name in zip(SIZES, names, strict=True):
        if runs and runs[-1][0] == name:
            runs[-1] = (name, size)
        else:
            runs.append((name, size))
    if len(runs) == 1:
        return f"{runs[0][0]}: every batch (fastest at every size measured at load)"
    parts = [f"{name} up to {size} row{'s' if size > 1 else ''}" for name, size in runs[:-1]]
    return ", ".join([*parts, f"{runs[-1][0]} above"]) + " (measured at load)"

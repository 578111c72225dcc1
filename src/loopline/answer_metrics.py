"""What a model's answers to held-out rows measure against their true values: outer-loop test's
validation and the monitoring check's labelled feedback both measure so.

A classifier answers labels, a probability for each class (scikit-learn's ``predict_proba``, in the order
of the sorted labels), or, of two classes, one probability a row: that of the second (statsmodels'
``Logit``, a LightGBM or XGBoost booster of a binary objective, a network's sigmoid). Its labels are
measured by accuracy, precision, recall and F1; its probabilities, where it answers them, by the area
under the ROC curve and the log loss too. A regressor is measured by RMSE, MAE and R².

A model answering several values a row (a multi-output regressor) is measured against as many columns of
true values, each output against its own: by each measure of each, named ``MEASURE_COLUMN``, and by each
measure averaged over them, named as the measure (as scikit-learn's ``uniform_average``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopline.errors import Refused

__all__ = ["PROBABILITY_METRICS", "answers_probabilities", "metrics_for"]

# What only a classifier's probabilities measure: a classifier answering labels has neither.
PROBABILITY_METRICS = ("roc_auc", "log_loss")

# The names a table of answers gives its prediction, beside a score or probability of it.
_PREDICTED = ("label", "prediction", "predictions", "predicted", "predicted_label", "class", "y_pred")


def metrics_for(task: str, truth: Any, predicted: Any, label: str | Sequence[str] = "") -> dict[str, float]:
    """Classification: accuracy, precision, recall, F1 (of a classifier answering probabilities, the
    label they make most likely), and ROC AUC and log loss where it answers probabilities. Regression:
    RMSE, MAE, R². A model answering a table (rows of ``{column: value}``) is measured by its column named
    ``label`` (the held-out rows' column of true values), else one named as a prediction (``_PREDICTED``),
    else its first. Of several ``label`` columns (``truth`` a table of them), each output is measured
    against its column (``_per_output``)."""
    import numpy as np
    from sklearn import metrics

    if not isinstance(label, str):
        if len(label) > 1:
            return _per_output(task, truth, predicted, list(label))
        label = label[0]
    if isinstance(first := next(iter(predicted), None), dict):
        column = _answer_column(list(first), label)
        predicted = [row.get(column) for row in predicted]
    if task == "regression":
        predicted = _one_value_a_row(predicted, label)
        return {
            "rmse": float(np.sqrt(metrics.mean_squared_error(truth, predicted))),
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "r2": float(metrics.r2_score(truth, predicted)),
        }
    classes = np.unique(np.asarray(truth))
    scores = _probabilities(classes, predicted)
    labels = _labels(classes, predicted, scores)
    positive = _positive(classes)
    if positive is None:  # each held-out class's measures averaged: a label of none of them is wrong
        counted, answered, each = truth, labels, {"average": "macro", "labels": classes}
    else:  # whether a row is of the positive class: a label the held-out rows never hold is not
        counted, answered, each = np.asarray(truth) == positive, np.asarray(labels) == positive, {}
    return {
        "accuracy": float(metrics.accuracy_score(truth, labels)),
        "precision": float(metrics.precision_score(counted, answered, **each, zero_division=0)),
        "recall": float(metrics.recall_score(counted, answered, **each, zero_division=0)),
        "f1": float(metrics.f1_score(counted, answered, **each, zero_division=0)),
        **(_probability_metrics(truth, classes, scores) if scores is not None else {}),
    }


def _positive(classes: Any) -> Any:
    """The class whose precision, recall and F1 measure a classifier of ``classes`` (the held-out labels',
    sorted): of two, the second (``1`` of ``0`` and ``1``, ``Yes`` of ``No`` and ``Yes``), as a training
    script measures its positive class and as a probability a row is read; of one, 1 where it is 0 or 1;
    None where each class's measures are averaged (macro)."""
    if len(classes) == 2:
        return classes[1]
    if set(classes.tolist()) <= {0, 1}:  # one class held out: 1 is still the positive one
        return 1
    return None


def _per_output(task: str, truth: Any, predicted: Any, labels: list[str]) -> dict[str, float]:
    """Each output against its column of ``truth``: a model answering a table by its columns named as
    the labels, else in their order; one answering rows of values, by position. Each measure of each
    column is named ``MEASURE_COLUMN``; the measures found for every column, averaged, keep their names."""
    rows = list(predicted)
    if rows and isinstance(rows[0], dict) and set(labels) <= set(rows[0]):
        outputs = [[row.get(name) for row in rows] for name in labels]
    else:
        values = [list(row.values()) if isinstance(row, dict) else _values(row) for row in rows]
        widths = {len(row) for row in values}
        if widths != {len(labels)}:
            answered = " or ".join(map(str, sorted(widths)))
            raise Refused(
                f"the model answers {answered} value(s) a row and validation.label "
                f"names {len(labels)} columns ({', '.join(labels)}): name one column of true values for "
                "each value the model answers, in its order"
            )
        outputs = [[row[at] for row in values] for at in range(len(labels))]
    each = {
        name: metrics_for(task, truth[name], answers, name)
        for name, answers in zip(labels, outputs, strict=True)
    }
    shared = [m for m in each[labels[0]] if all(m in found for found in each.values())]
    averaged = {m: sum(found[m] for found in each.values()) / len(labels) for m in shared}
    return averaged | {f"{m}_{name}": value for name, found in each.items() for m, value in found.items()}


def _values(row: Any) -> list[Any]:
    """One row of a model's answers as a list of its values (a single value: a list of one)."""
    import numpy as np

    return np.ravel(row).tolist() if isinstance(row, list | tuple | np.ndarray) else [row]


def _one_value_a_row(predicted: Any, label: str) -> Any:
    """A regressor's answers as one value a row; refused, saying to name a column for each, where it
    answers several (a multi-output regressor measured against one column of true values)."""
    import numpy as np

    if not isinstance(next(iter(predicted), None), list | tuple | np.ndarray):
        return predicted
    rows = [_values(row) for row in predicted]
    widths = {len(row) for row in rows}
    if widths == {1}:
        return [row[0] for row in rows]
    count = " or ".join(map(str, sorted(widths)))
    raise Refused(
        f"the model answers {count} values a row and validation.label names one column of true values "
        f"({label}): name one for each value, in the order the model answers them (validation.label: "
        f"[{label}, ...])"
    )


def answers_probabilities(answer: Any) -> bool:
    """Whether a classifier's ``answer`` (to its input example) is probabilities: rows of several numbers
    from 0 to 1 that sum to 1, or one number a row from 0 to 1, not all of them 0 or 1."""
    import numpy as np

    try:
        values = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):  # texts, a table of several kinds: labels, or more than probabilities
        return False
    if not values.size or not _shares(values):
        return False
    if values.ndim == 2 and values.shape[1] > 1:
        return bool(np.allclose(values.sum(axis=1), 1.0, atol=1e-3))
    return values.ndim <= 2 and bool((values != np.round(values)).any())


def _answer_column(columns: list[str], label: str) -> str | None:
    """Which column of a table of answers holds the prediction: the one named as the true values' column,
    else the first named as a prediction, else the first."""
    for name in (label, *_PREDICTED):
        if name and name in columns:
            return name
    return next(iter(columns), None)


def _probabilities(classes: Any, predicted: Any) -> Any:
    """The probabilities a classifier answered: rows of several values (refused where they are not one a
    class), or one number a row from 0 to 1 where the classes are two and the numbers are not only those
    classes (the second's); None where it answered labels, refused where numbers that are neither."""
    import numpy as np

    if isinstance(next(iter(predicted), None), list | tuple | np.ndarray):
        rows = [np.ravel(row) for row in predicted]
        widths = {len(row) for row in rows}
        if widths != {len(classes)}:
            raise Refused(
                f"the model answers {' or '.join(map(str, sorted(widths)))} values a row and the held-out "
                f"labels have {len(classes)} classes: to be validated, a classifier answers a label a row, "
                "or a probability for each class of the held-out labels, in their sorted order"
            )
        return np.asarray(rows, dtype=np.float64)
    try:
        values = np.asarray(predicted, dtype=np.float64)
    except (TypeError, ValueError):  # texts, or mixed: labels
        return None
    if values.ndim != 1 or not values.size or np.isin(values, classes).all():
        return None
    if _shares(values) and len(classes) == 2:
        return values
    if (values != np.round(values)).any():
        shown = ", ".join(f"{value:g}" for value in values[:3])
        raise Refused(
            f"the model answers numbers that are no labels ({shown}, ...) and the held-out labels have "
            f"{len(classes)} class(es) ({', '.join(map(str, classes[:5]))}): to be validated, a classifier "
            "answers a label a row, the probability of the second of two classes (in their sorted order), or "
            "a probability for each class; or set validation.task: regression"
        )
    return None


def _shares(values: Any) -> bool:
    """Whether every one of ``values`` (a non-empty float array) is a probability: finite, 0 to 1."""
    import numpy as np

    return bool(np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1)


def _labels(classes: Any, predicted: Any, scores: Any) -> Any:
    """A classifier's answers as labels: the most likely class of a row of probabilities, the second of
    two where its probability is at least 0.5; labels as they are."""
    import numpy as np

    if scores is None:
        return predicted
    if scores.ndim == 2:
        return classes[scores.argmax(axis=1)]
    return np.where(scores >= 0.5, classes[1], classes[0])


def _probability_metrics(truth: Any, classes: Any, scores: Any) -> dict[str, float]:
    """ROC AUC (one class against the rest, averaged, for more than two) and log loss of probabilities;
    none where the held-out labels hold one class only (no curve to draw)."""
    import numpy as np
    from sklearn import metrics

    if len(classes) < 2:
        return {}
    truth = np.asarray(truth)
    if scores.ndim == 2 and len(classes) == 2:
        scores = scores[:, 1]
    if scores.ndim == 1:
        auc = metrics.roc_auc_score(truth == classes[1], scores)
    else:
        shares = scores / scores.sum(axis=1, keepdims=True)  # one a row, as roc_auc_score needs
        auc = metrics.roc_auc_score(truth, shares, multi_class="ovr", labels=classes)
    return {"roc_auc": float(auc), "log_loss": float(metrics.log_loss(truth, scores, labels=classes))}

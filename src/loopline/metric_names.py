"""Metric names. Which way a metric is better, read from its name as people name them: ``val_loss``,
``test_rmse`` and scikit-learn's ``davies_bouldin_score`` are better lower; ``accuracy``, ``roc_auc``
and ``silhouette_score`` higher; a scikit-learn scorer's ``neg_`` name (``neg_mean_squared_error``)
turns the measure it negates around. And a name as MLflow takes it for a key."""

from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "Better",
    "better_by_name",
    "held_out_first",
    "measured_as",
    "measures_clusters",
    "measures_row_count",
    "mlflow_keys",
]

Better = Literal["higher", "lower"]

# Within any name (``logloss``, ``val_rmse``, ``mean_absolute_error``); read before the higher ones, so
# that ``davies_bouldin_score`` is a Davies-Bouldin index before it is a score.
_LOWER = re.compile(
    r"loss|error|mse|rmse|mae|mape|wape|logloss|brier|davies|bouldin|inertia|perplexity|distortion", re.I
)
# Short ones as words of the name only (``test_bic``, not ``public_share``).
_LOWER_WORDS = frozenset({"aic", "bic", "nll", "wer", "cer"})
_HIGHER = re.compile(
    r"accuracy|acc|auc|f1|precision|recall|r2|score|ap|map|ndcg|coverage|silhouette|calinski|harabasz"
    r"|likelihood|homogeneity|completeness|v_measure|mutual_info|bleu|rouge|coherence",
    re.I,
)
_HIGHER_WORDS = frozenset({"rand", "ari", "nmi"})  # adjusted_rand_score, its initials; normalized MI
_NEGATED = frozenset({"neg", "negative"})
# The measures of a clustering, which needs no true values: scikit-learn's silhouette_score,
# davies_bouldin_score, calinski_harabasz_score, and KMeans' inertia_ (a sum over the rows clustered).
_CLUSTERS = re.compile(r"silhouette|davies|bouldin|calinski|harabasz|inertia|distortion", re.I)
_SUMMED = re.compile(r"inertia|distortion", re.I)


def better_by_name(name: str) -> Better | None:
    """``lower`` or ``higher`` as ``name`` says a metric is better, or None where it does not say."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if _LOWER.search(name) or words & _LOWER_WORDS:
        found: Better | None = "lower"
    elif _HIGHER.search(name) or words & _HIGHER_WORDS:
        found = "higher"
    else:
        return None
    if words & _NEGATED:
        return "higher" if found == "lower" else "lower"
    return found


# A metric measured on rows the training held out (``test_accuracy``, ``val_loss``, ``valid_0-auc``).
_HELD_OUT = re.compile(r"(^|[_.\-/: ])(test|val|valid|validation|eval|holdout|heldout)([_.\-/: ]|$)", re.I)


def held_out_first(names: list[str]) -> list[str]:
    """``names`` with those that say they were measured on held-out rows (``test_accuracy``,
    ``val_loss``) first: of a training's accuracy and test accuracy, the test one ranks and validates."""
    return sorted(names, key=lambda name: not _HELD_OUT.search(name))


def measures_clusters(name: str) -> bool:
    """Whether metric ``name`` measures a clustering by its own rows (silhouette, Davies-Bouldin, ...)."""
    return bool(_CLUSTERS.search(name))


def measures_row_count(name: str) -> bool:
    """Whether metric ``name`` is a sum over the rows measured (KMeans' inertia), so that it grows with
    their number and bounds it on other rows mean nothing."""
    return bool(_SUMMED.search(name))


# Words that make a metric named after a measure another one: an area under a curve
# (``precision_recall_auc``), a balanced or top-k accuracy, a precision at k.
_OTHER_MEASURE = frozenset({"auc", "ap", "auprc", "auroc", "balanced", "top", "at", "curve", "area"})


# A classifier's probabilities' measures, as trainings name them: an area under the ROC curve (``auc``,
# ``val_auc``, ``roc_auc``), not under a precision-recall one; a log loss (``binary_logloss``, ``mlogloss``).
_ROC_AUC = frozenset({"auc", "auroc", "rocauc", "roc"})
_NOT_ROC = frozenset({"pr", "prc", "auprc", "precision", "recall", "ap", "average"})
_LOG_LOSS = re.compile(r"log_?loss|cross_?entropy", re.I)


def measured_as(measured: tuple[str, ...], name: str) -> str | None:
    """Which of the metrics outer-loop test ``measured`` the logged metric ``name`` is, if any: one
    that names exactly one of them (``precision_recall_auc`` is neither precision nor recall)."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if "roc_auc" in measured and words & _ROC_AUC and not words & _NOT_ROC:
        return "roc_auc"
    if "log_loss" in measured and _LOG_LOSS.search(name):
        return "log_loss"
    if "f1_score" in name.lower():
        words.add("f1")
    named = [m for m in measured if m in words]
    return named[0] if len(named) == 1 and not words & _OTHER_MEASURE else None


# What MLflow refuses in a metric's or tag's key (its own rule: letters, digits, _ - . space : /), and its
# longest key.
_NOT_IN_KEY = re.compile(r"[^/\w.\- :]")
_KEY_LENGTH = 250


def mlflow_keys(names: list[str]) -> dict[str, str]:
    """Each of ``names`` as a key MLflow takes: a character it refuses (a column's ``(€)``, ``@``) as
    ``_``, cut to its length; a key that then repeats an earlier one numbered (``... 2``)."""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        key = _NOT_IN_KEY.sub("_", name)[:_KEY_LENGTH]
        count = 1
        while key in taken:
            count += 1
            key = f"{_NOT_IN_KEY.sub('_', name)[: _KEY_LENGTH - 8]} {count}"
        keys[name] = key
        taken.add(key)
    return keys

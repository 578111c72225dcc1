"""What ``init --existing`` writes from the metrics a dry run of the training logged: the inner loop's
gate (thresholds 10% short of what it reached), the ranking of rival runs, and outer-loop test's
validation (the task, and bounds on the metrics it measures again on held-out rows)."""

from __future__ import annotations

import json
import re

import yaml

from loopline.answer_metrics import PROBABILITY_METRICS
from loopline.dry_run import DryRun
from loopline.metric_names import (
    better_by_name,
    held_out_first,
    measured_as,
    measures_clusters,
    measures_row_count,
)

__all__ = [
    "best_rival",
    "gate_text",
    "gate_thresholds",
    "measured_by_validation",
    "on_training_rows",
    "ranking_text",
    "rivals",
    "validation_lines",
    "validation_thresholds",
    "yaml_scalar",
]

# autolog's training_score, train_loss, ...; TensorBoard's and Lightning's train/loss, train:acc
_TRAINING_SET = re.compile(r"^(training|train)[_.\-/: ]", re.I)


def on_training_rows(name: str) -> bool:
    """Whether the metric ``name`` says it was measured on the training rows (autolog's ``training_*``)."""
    return bool(_TRAINING_SET.match(name))


def gate_thresholds(
    metrics: dict[str, float], error_margin: float = 0.1
) -> tuple[dict[str, dict[str, float]], list[str], list[str]]:
    """Thresholds a little below what the dry run reached (10%), or above for losses and errors
    (``error_margin``); the metrics left out; and those measured on the training rows (autolog's
    ``training_*``), left out where others are measured on held-out rows: a model that generalises better
    scores lower on its own training rows."""
    gate: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    held_out = [n for n in metrics if better_by_name(n) and not _TRAINING_SET.match(n)]
    fitted = sorted(n for n in metrics if held_out and _TRAINING_SET.match(n))
    for name, value in sorted(metrics.items()):
        if name in fitted:
            continue
        better = better_by_name(name)
        if better == "lower":
            gate[name] = {"max": round(value * (1 + error_margin) if value > 0 else value + 0.1, 4)}
        elif better == "higher":
            gate[name] = {"min": round(value * 0.9 if value > 0 else value - 0.1, 4)}
        else:
            skipped.append(name)
    return gate, skipped, fitted


# How far above the dry run's value outer-loop test bounds a loss or an error, measured on other rows than
# the training measured it on: near zero where a model is good, it moves more than 10% of itself from one
# sample of rows to another (a log loss of 0.115 on 28 rows was 0.138 on 40 others), while a score such as
# an accuracy does not move 10% of itself.
HELD_OUT_ERROR_MARGIN = 0.25


def _held_out_bounds(run: DryRun) -> dict[str, dict[str, float]]:
    """Bounds for outer-loop test from what the dry run reached, less those measured on the training rows."""
    metrics = {k: v for k, v in run.metrics.items() if not on_training_rows(k)}
    return gate_thresholds(metrics, HELD_OUT_ERROR_MARGIN)[0]


# What outer-loop test measures through the test endpoint, by task; the first is the challenger's metric.
_VALIDATION_METRICS = {
    "classification": ("accuracy", "f1", "precision", "recall"),
    "regression": ("r2", "rmse", "mae"),
}
_FRACTIONS = {
    "accuracy",
    "f1",
    "precision",
    "recall",
    "r2",
    "roc_auc",
}  # measured as fractions (r2 at most 1)


def ranking_text(gate: dict[str, dict[str, float]], run: DryRun) -> str:
    """A ranking file for `loopline compare` and ``model.select: best``, by the metric ``_primary``
    names."""
    primary, direction = _primary(gate, run)
    return (
        "# How `loopline compare` ranks dev's runs, and which run the inner loop registers with\n"
        f"# `model.select: best` (see docs/cli.md, compare); written from {run.origin}. Add secondary\n"
        "# metrics ({direction, weight}) and constraints ({min, max}) as you weigh them.\n"
        + yaml.safe_dump({"primary": {"metric": primary, "direction": direction}}, default_flow_style=None)
    )


def _primary(gate: dict[str, dict[str, float]], run: DryRun) -> tuple[str, str]:
    """The ranking's metric and direction: the gated metric the task's validation measures first (the
    challenger's), else the gate's first, in the gate's direction."""
    measured = measured_by_validation(run) if run.task else ()
    names = held_out_first(list(gate))
    primary = next((n for m in measured for n in names if measured_as(measured, n) == m), next(iter(gate)))
    return primary, "maximize" if "min" in gate[primary] else "minimize"


def rivals(run: DryRun) -> str:
    """What the rivals are: runs of a search by hand, or checkpoints of one run."""
    return "checkpoints" if run.checkpoints else "runs"


def best_rival(gate: dict[str, dict[str, float]], run: DryRun) -> dict[str, float]:
    """The metrics of the run the ranking file puts first, of those that logged the model (the dry run's
    own where none logged the ranking's metric)."""
    metric, direction = _primary(gate, run)
    ranked = [rival for rival in run.rivals if metric in rival]
    if not ranked:
        return run.metrics
    sign = 1 if direction == "maximize" else -1
    return max(ranked, key=lambda rival: sign * rival[metric])


def validation_thresholds(run: DryRun) -> dict[str, dict[str, float]]:
    """Bounds 10% short of what the dry run reached (25% over, for a loss or an error) on the metrics
    outer-loop test measures for its task (the challenger's metric first); empty where it logged none of
    them, or told no task."""
    if run.task is None:
        return {}
    measured = measured_by_validation(run)
    reached: dict[str, dict[str, float]] = {}
    bounds = _held_out_bounds(run)
    found = {name: measured_as(measured, name) for name in held_out_first(list(bounds))}
    # A regressor of several targets logging a measure of each (mae_heating, mae_cooling) bounds none of
    # them on the average validation measures.
    several = run.label is not None and len(run.label[0]) > 1
    for name, same in found.items():
        if same in _FRACTIONS and run.metrics[name] > 1:  # a percentage, where validation measures a fraction
            continue
        if several and list(found.values()).count(same) > 1:
            continue
        if same is not None and same not in reached:
            reached[same] = bounds[name]
    return {m: reached[m] for m in measured if m in reached}


def measured_by_validation(run: DryRun) -> tuple[str, ...]:
    """The metrics outer-loop test measures on held-out rows for the model of ``run`` (which has a task):
    its task's, and of a classifier answering probabilities, the ROC AUC and log loss too."""
    assert run.task is not None
    extra = PROBABILITY_METRICS if run.task == "classification" and run.probabilities else ()
    return (*_VALIDATION_METRICS[run.task], *extra)


def validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for outer-loop test (full tier), from the dry run: the task the model's answers
    tell, and bounds 10% short of what it reached on the metrics outer-loop test measures too."""
    if run.language_model:
        return _conversation_validation_lines(run)
    if run.forecast is not None:
        return _forecast_validation_lines(run)
    if run.clustering:
        return _clustering_validation_lines(run)
    if run.task is None:  # the held-out rows' name, for the upload init's note asks for; the rest to set
        return [
            "# outer-loop test (full tier): the test endpoint's answers to held-out rows. Neither the model",
            "# (it declares no answer in a signature) nor the metrics it logs tell its task: set it, and the",
            "# bounds a model must reach.",
            "validation:",
            "  data: heldout   # a data asset of held-out rows and labels: loopline data upload heldout PATH",
            _label_line(run.label),
            "  task: classification   # or regression",
            "  thresholds: {}",
            "",
        ]
    measured = measured_by_validation(run)
    reached = validation_thresholds(run)
    lines = [
        "# outer-loop test (full tier): the test endpoint's answers to held-out rows. The task is read from",
        f"# the model's answers and the metrics it logs, the bounds from {run.origin}: check both.",
        "validation:",
        "  data: heldout   # a data asset of held-out rows and labels: loopline data upload heldout PATH",
        _label_line(run.label),
        f"  task: {run.task}",
        f"  thresholds: {json.dumps(reached) if reached else '{}'}",
        f"  challenger_metric: {next(iter(reached), measured[0])}",
        "",
    ]
    return lines


def _forecast_validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for a forecast: a command of the project measures it through the endpoint, gated on
    the error metrics the training logged (25% over what it reached)."""
    gate = _held_out_bounds(run)
    errors = {name: bound for name, bound in gate.items() if _REGRESSION_ERROR.search(name)}
    return _command_validation_lines(
        [
            f"a forecast ({run.forecast}) answers a value for each step",
            "of the horizon a request names, which loopline cannot measure on held-out rows: validate.py",
            "(yours to write: docs/outer-loops.md, 'A validation of your own') forecasts the held-out steps",
            f"through the endpoint and writes its metrics. The bounds come from {run.origin}: check them.",
        ],
        "the steps held out",
        errors,
        "mae",
    )


def _conversation_validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for a chat model or an agent: a command of the project asks it held-out questions
    through the endpoint and measures its answers as the training did, gated on what the training logged
    (10% short of what it reached; 25% over for a measure better lower)."""
    gate = _held_out_bounds(run)
    return _command_validation_lines(
        [
            "a chat model or an agent answers a conversation, which",
            "loopline cannot measure against a column of true values: validate.py (yours to write:",
            "docs/outer-loops.md, 'A validation of your own') asks the held-out questions through the",
            f"endpoint and measures the answers as the training does. The bounds come from {run.origin}:",
            "check them.",
        ],
        "questions the training never saw, with the answers expected",
        gate,
        "accuracy",
    )


def _clustering_validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for a clustering: a command of the project clusters held-out rows through the
    endpoint and measures the clusters as the training did, gated on those measures (10% short of what it
    reached, 25% over for one better lower; a sum over the rows, such as KMeans' inertia, is left to the
    inner loop's gate)."""
    gate = _held_out_bounds(run)
    measures = {n: b for n, b in gate.items() if measures_clusters(n) and not measures_row_count(n)}
    return _command_validation_lines(
        [
            "a clustering answers a cluster a row, and held-out rows",
            "hold no true cluster to measure it against: validate.py (yours to write: docs/outer-loops.md,",
            "'A validation of your own') clusters the held-out rows through the endpoint and measures the",
            f"clusters as the training does. The bounds come from {run.origin}: check them.",
        ],
        "rows the training never saw",
        measures,
        "silhouette",
    )


def _command_validation_lines(
    said: list[str], rows: str, thresholds: dict[str, dict[str, float]], usual: str
) -> list[str]:
    """``validation:`` run by validate.py, with the comment ``said`` above it, the held-out ``rows`` it
    reads, its ``thresholds`` and challenger metric (the ``usual`` one where it is among them, else the
    first)."""
    return [
        "# outer-loop test (full tier): " + said[0],
        *(f"# {line}" for line in said[1:]),
        "validation:",
        "  command: python validate.py",
        f"  data: heldout   # {rows}, for validate.py: loopline data upload heldout PATH",
        f"  thresholds: {json.dumps(thresholds)}",
        f"  challenger_metric: {usual if usual in thresholds else next(iter(thresholds), usual)}",
        "",
    ]


# The metrics of a forecast's errors on held-out steps, which validate.py measures again through the endpoint.
_REGRESSION_ERROR = re.compile(r"(rmse|mse|mae|mape|wape|error)", re.I)


def _label_line(label: tuple[tuple[str, ...], str] | None) -> str:
    """``validation.label``: the column (or columns) the dry run found the true values in, else the
    default name."""
    if label is None:
        return "  label: label    # the column holding the true values"
    columns, table = label
    if len(columns) == 1:
        said = f"the true values: the column of {table} the model does not take"
        return f"  label: {yaml_scalar(columns[0])}   # {said}"
    said = (
        f"the true values of each output the model answers, in its order: columns of {table} it does not take"
    )
    return f"  label: [{', '.join(map(yaml_scalar, columns))}]   # {said}"


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain where YAML reads it back as the same text, else quoted."""

    plain = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./ =-]*", value) and not value.endswith(" ")
    if plain and yaml.safe_load(value) == value:
        return value
    quoted = json.dumps(value, ensure_ascii=False)  # "Price (€)" as it is written, not "Price (\u20ac)"
    return quoted if yaml.safe_load(quoted) == value else json.dumps(value)


def gate_text(gate: dict[str, dict[str, float]], skipped: list[str], fitted: list[str], origin: str) -> str:
    header = (
        f"# The inner loop's gate, written from {origin}: each threshold is 10% short of\n"
        "# what that run reached. Tighten them to what a model must reach to be registered.\n"
    )
    body = yaml.safe_dump({"metrics": gate}, sort_keys=False)
    listed = [
        ("Also logged, not gated", skipped),
        (
            "Measured on the training rows, not gated (a model that generalises better scores lower there)",
            fitted,
        ),
    ]
    return (
        header
        + body
        + "".join(
            f"# {title}:\n" + "".join(f"#   {name}: {{min: ..., max: ...}}\n" for name in names)
            for title, names in listed
            if names
        )
    )

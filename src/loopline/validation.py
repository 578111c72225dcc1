"""Extended validation of a candidate in the test workspace, through its endpoint.

Four checks, each recorded in the report: metric thresholds on held-out data from the inbox datastore
(predictions come from the endpoint, not from the model in this process; or the metrics the project's
``validation.command`` measures through it), challenger against champion on the same data, a smoke test
with the model's input example, and a p95 latency budget.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline import children
from loopline.answer_labels import changed_answers
from loopline.answer_metrics import PROBABILITY_METRICS, metrics_for
from loopline.config import ValidationConfig
from loopline.domain import MetricCheck
from loopline.endpoints.client import (
    EXAMPLE,
    EndpointClient,
    example_request,
    input_data,
    predict_rows,
    rows_request,
)
from loopline.errors import ConfigError, InvalidData, NotFound, Refused, shorten
from loopline.instance import Instance
from loopline.markdown import code, text
from loopline.metric_names import better_by_name
from loopline.progress import NullReporter, Reporter

__all__ = [
    "Candidate",
    "Heldout",
    "ValidationFindings",
    "load_heldout",
    "metrics_for",
    "read_data",
    "validate",
]

# What validation.command sees of loopline's environment: no store credential, token or key of any kind.
_PASSED_ON = frozenset(
    {"PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV", "OMP_NUM_THREADS"}
    | {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy"}
    | {"https_proxy", "no_proxy"}
)


@dataclass(frozen=True)
class Candidate:
    """A deployment to judge: its endpoint, deployment name, model version and commit."""

    endpoint: str
    deployment: str
    model: str
    version: int
    git_commit: str
    folder: Path


@dataclass
class ValidationFindings:
    """What validation found; ``passed`` only when every check passed."""

    candidate: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, float]
    checks: list[dict[str, Any]]
    champion: dict[str, Any] | None
    challenger: dict[str, Any]
    smoke: dict[str, Any]
    latency: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    measured_by: str | None = None  # validation.command, where it measured the metrics
    answers: str | None = None  # how the candidate's answers differ in form from the champion's, if they do

    @property
    def passed(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "passed": self.passed,
            "failures": self.failures,
            "candidate": self.candidate,
            "data": self.data,
            "metrics": self.metrics,
            "checks": self.checks,
            "champion": self.champion,
            "challenger": self.challenger,
            "smoke": self.smoke,
            "latency": self.latency,
            "measured_by": self.measured_by,
            "answers": self.answers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationFindings:
        """The findings of a JSON report (``passed`` follows from its failures)."""
        return cls(**{key: value for key, value in data.items() if key != "passed"})

    def markdown(self) -> str:
        """The report for people (and for a GitHub step summary)."""
        c = self.candidate
        # the registry's version (the one marked), and the test workspace's copy where it numbers otherwise
        shared = c.get("registry_version", c["version"])
        copy = f"; v{c['version']} in test" if shared != c["version"] else ""
        lines = [
            f"## Validation of {text(c['model'])} v{shared} ({c['git_commit'][:7]}{copy}): "
            f"{'passed' if self.passed else 'FAILED'}",
            "",
        ]
        if self.failures:
            lines += [f"- {text(failure)}" for failure in self.failures] + [""]
        if self.data.get("path"):
            lines.append(
                f"Held-out data: {_asset(self.data)}{code(self.data['path'])}, {self.data['rows']} rows, "
                f"`{self.data['digest'][:19]}…`"
            )
        else:
            lines.append(f"Held-out data: none ({text(self.data.get('note', 'not given'))})")
        if self.measured_by:
            lines.append(f"Metrics measured through the endpoint by {code(self.measured_by)}")
        lines += ["", "| metric | value | min | max | result |", "|---|---|---|---|---|"]
        for check in self.checks:
            value = "missing" if check["value"] is None else f"{check['value']:.4f}"
            low = "" if check["min"] is None else f"{check['min']:g}"
            high = "" if check["max"] is None else f"{check['max']:g}"
            lines.append(
                f"| {text(check['metric'])} | {value} | {low} | {high} | "
                f"{'pass' if check['passed'] else 'FAIL'} |"
            )
        checked = {check["metric"] for check in self.checks}
        lines += [
            f"| {text(name)} | {value:.4f} |  |  | not gated |"
            for name, value in self.metrics.items()
            if name not in checked and isinstance(value, int | float)
        ]
        if not self.checks and self.metrics:
            lines += ["", "No metric is gated: give bounds in validation.thresholds (loopline.yaml)."]
        challenger = self.challenger
        if self.champion and challenger["champion"] is None:
            lines += [
                "",
                f"Champion: v{self.champion['version']} ({self.champion['git_commit'][:7]}), not compared: "
                "the metrics could not be measured",
            ]
        elif self.champion:
            lines += [
                "",
                f"Champion: v{self.champion['version']} ({self.champion['git_commit'][:7]}), "
                f"{text(challenger['metric'])} {challenger['champion']:.4f}; "
                f"candidate {challenger['candidate']:.4f}, margin {challenger['margin']:g}: "
                f"{'pass' if challenger['passed'] else 'FAIL'}",
            ]
        else:
            lines += ["", "Champion: none in prod yet; the challenger check passes."]
        if self.answers:
            lines.append(
                f"Answers: {text(self.answers)}; its clients would not read them as they read the "
                "champion's, so outer-loop prod releases it only with --breaking-change REASON"
            )
        latency = self.latency
        lines += [
            f"Smoke test: {'pass' if self.smoke['passed'] else 'FAIL'} ({text(self.smoke['detail'])})",
            f"Latency: p95 {latency['p95_ms']:.1f} ms over {latency['requests']} requests, budget "
            f"{latency['budget_ms']:g} ms: {'pass' if latency['passed'] else 'FAIL'}"
            if latency["requests"]
            else "Latency: not measured (no held-out rows or input example to send)",
        ]
        return "\n".join(lines) + "\n"


def _asset(data: dict[str, Any]) -> str:
    return f"data asset {text(data['asset'])}, " if data.get("asset") else ""


@dataclass(frozen=True)
class Heldout:
    """Held-out rows as read (labels included), where they came from, and, with loopline's own metrics,
    the features and labels apart."""

    frame: Any
    source: dict[str, Any]
    features: Any = None
    labels: Any = None


def read_data(
    instance: Instance, name: str, texts: Collection[str] = ()
) -> tuple[Any, str, dict[str, Any]] | None:
    """The rows a setting (``validation.data``) names, a description and their source; None where nothing
    has that ``name``: a data asset (``NAME`` or ``NAME:VERSION``, read from its verified bytes) or, where
    no asset has that name, a file in the inbox datastore. The columns ``texts`` (the model's text) are
    read as text."""
    from loopline.data import named_asset, read_asset

    asset = named_asset(instance, name)
    if asset is not None:
        frame = read_asset(instance, asset, texts)
        source = {"path": asset.reference, "asset": f"{asset.name}:{asset.version}", "digest": asset.digest}
        return frame, f"data asset {asset.name}:{asset.version}", {**source, "rows": len(frame)}
    inbox = instance.datastore("inbox")
    if not inbox.exists(name):
        return None
    frame = inbox.frame(name, texts)
    where = f"inbox://{name}"
    return (frame, where, {"path": where, "digest": "sha256:" + inbox.file_digest(name), "rows": len(frame)})


def load_heldout(
    instance: Instance, config: ValidationConfig, texts: Collection[str] = ()
) -> tuple[Any, Any, dict[str, Any]]:
    """The held-out features and labels, and where they came from (``read_data``); missing held-out
    data, or data without the label column, is refused saying what to upload or set."""
    found = read_data(instance, config.data, texts)
    if found is None:
        named = "/" not in config.data and "." not in config.data
        upload = f"`loopline data upload {config.data if named else 'heldout'} PATH`"
        raise NotFound(
            f"the held-out data '{config.data}' (validation.data) is neither a data asset nor a file in "
            f"the inbox; upload held-out rows with their labels: {upload}"
            + ("" if named else ", and set validation.data: heldout in loopline.yaml")
        )
    frame, where, source = found
    features, labels = split_labels(frame, config.label, f"the held-out data ({where})")
    return features, labels, source


def split_labels(frame: Any, label: str | Sequence[str], what: str) -> tuple[Any, Any]:
    """``frame``'s features and its column of true labels ``label`` (of several columns, a table of
    them); refused, naming ``what`` holds the rows, where a column is missing, there are no rows, or a row
    has no label."""
    columns = [label] if isinstance(label, str) else list(label)
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        held = [str(c) for c in frame.columns]
        shown = ", ".join(shorten(c, 40) for c in held[:8]) + (", ..." if len(held) > 8 else "")
        raise ConfigError(
            f"{what} has no column '{missing[0]}' (its columns: {shown}); set validation.label in "
            "loopline.yaml to the column holding the true labels"
        )
    if frame.empty:
        raise Refused(f"{what} has no rows")
    for name in columns:
        _labelled(frame, name, what)
    truth = frame[columns[0]] if isinstance(label, str) else frame[columns]
    return frame.drop(columns=columns), truth


def _labelled(frame: Any, label: str, what: str) -> None:
    """Refused, naming the first rows, where a row of ``frame`` has no value in column ``label``."""
    unlabelled = [int(at) + 1 for at in frame.index[frame[label].isna()][:5]]
    if unlabelled:
        count = int(frame[label].isna().sum())
        rows = ", ".join(map(str, unlabelled)) + (" ..." if count > 5 else "")
        raise InvalidData(
            f"{what} has {count} row(s) without a label in column '{label}' (row {rows}, counting from 1): "
            "a metric needs every row's true label; label them or leave them out, and upload the data again"
        )


def heldout_for(instance: Instance, config: ValidationConfig, texts: Collection[str] = ()) -> Heldout | None:
    """What validation measures on: the held-out features and labels (refused when missing), or, for
    ``validation.command``, the held-out rows as they are, where ``validation.data`` names some; the
    columns ``texts`` (the model's text) read as text."""
    if config.command is None:
        features, labels, source = load_heldout(instance, config, texts)
        return Heldout(None, source, features, labels)
    found = read_data(instance, config.data, texts)
    return None if found is None else Heldout(found[0], found[2])


def _failure(check: MetricCheck) -> str:
    """Why a threshold failed; for a metric of probabilities the model did not answer, what to serve."""
    if check.value is None and check.metric in PROBABILITY_METRICS:
        return (
            f"{check.metric} is measured on a classifier's probabilities, and the model answers labels: "
            "serve its probabilities (mlflow.sklearn.log_model(..., pyfunc_predict_fn='predict_proba')), or "
            "bound another metric in validation.thresholds"
        )
    return check.describe()


def _challenger(
    config: ValidationConfig, metrics: dict[str, float], champion: dict[str, float] | None
) -> dict[str, Any]:
    name = config.compared_on
    if champion is None:
        return {
            "metric": name,
            "candidate": metrics.get(name),
            "champion": None,
            "margin": config.challenger_margin,
            "passed": True,
        }
    ours, theirs = metrics.get(name), champion.get(name)
    if ours is None or theirs is None:
        raise ConfigError(f"validation.challenger_metric '{name}' is not one of {', '.join(metrics)}")
    better_low = lower_is_better(config, name)
    passed = (
        ours <= theirs + config.challenger_margin if better_low else ours >= theirs - config.challenger_margin
    )
    return {
        "metric": name,
        "candidate": ours,
        "champion": theirs,
        "margin": config.challenger_margin,
        "passed": passed,
    }


def _smoke(client: EndpointClient, candidate: Candidate, features: Any) -> dict[str, Any]:
    """The model's input example answered through the endpoint, else (a model logged without one) the
    first rows of the held-out ``features``."""
    example = example_request(candidate.folder)
    if example is None and features is not None and len(features):
        example = rows_request(features, "the first rows of the held-out data")
    if example is None:
        return {"passed": True, "detail": "the model has no input example; nothing to send"}
    rows = example.rows
    result = client.score(
        candidate.endpoint, example.payload, deployment=candidate.deployment, route=example.route
    )
    answers = example.answers(result.body)
    # A prediction a row, or more for a model that answers a series (a forecast of a horizon)
    passed = result.ok and answers is not None and len(answers) >= rows
    answered = len(answers) if answers is not None else 0
    detail = f"{result.status}, {answered} predictions for {rows} rows" + (
        f" ({example.source}: the model has no input example)" if example.source != EXAMPLE else ""
    )
    return {"passed": passed, "detail": detail, "status": result.status}


def _latency(
    client: EndpointClient, candidate: Candidate, features: Any, config: ValidationConfig
) -> dict[str, Any]:
    """The p95 of single-row requests of the held-out features, or, without them, of the model's input
    example as MLflow wrote the request."""
    requests: list[tuple[Any, str]] = []
    if features is not None:
        table = input_data(features.head(config.latency_requests))
        requests = [
            ({"input_data": {"columns": table["columns"], "data": [row]}}, "score") for row in table["data"]
        ]
    elif (example := example_request(candidate.folder)) is not None:
        requests = [(example.payload, example.route)]
    timings = []
    for index in range(config.latency_requests if requests else 0):
        payload, route = requests[index % len(requests)]
        started = time.perf_counter()
        client.score(candidate.endpoint, payload, deployment=candidate.deployment, route=route)
        timings.append((time.perf_counter() - started) * 1000)
    if not timings:
        return {
            "p50_ms": 0.0,
            "p95_ms": 0.0,
            "requests": 0,
            "budget_ms": config.latency_p95_ms,
            "passed": True,
        }
    timings.sort()
    p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": p95,
        "requests": len(timings),
        "budget_ms": config.latency_p95_ms,
        "passed": p95 <= config.latency_p95_ms,
    }


def validate(
    client: EndpointClient,
    candidate: Candidate,
    champion: Candidate | None,
    instance: Instance,
    config: ValidationConfig,
    heldout: Heldout | None,
    reporter: Reporter | None = None,
) -> ValidationFindings:
    """Run every check on ``heldout`` (``heldout_for``'s: none where ``validation.command`` measures
    without held-out rows); a failed check is recorded, not raised."""
    with tempfile.TemporaryDirectory(prefix="loopline-validation-") as scratch:
        # The held-out rows are written for validation.command once, for the candidate and the champion.
        where = _Where(instance.root, reporter or NullReporter(), Path(scratch))
        if config.command is not None and heldout is not None:
            heldout.frame.to_csv(where.heldout_csv, index=False)
        metrics, trouble, answers = _measure(client, candidate, config, heldout, where)
        failures = [trouble] if trouble else []
        champion_info = None
        champion_metrics = None
        changed = None
        if champion is not None:
            champion_metrics, trouble, theirs = _measure(client, champion, config, heldout, where)
            changed = _answer_change(champion, theirs, answers)
            failures += [trouble] if trouble else []
            champion_info = {
                "version": champion.version,
                "git_commit": champion.git_commit,
                "metrics": champion_metrics,
            }
    checks = [
        MetricCheck(metric, metrics.get(metric), bound.min, bound.max)
        for metric, bound in config.thresholds.items()
    ]
    data: dict[str, Any] = (
        heldout.source
        if heldout is not None
        else {
            "path": None,
            "rows": 0,
            "digest": None,
            "note": f"validation.data '{config.data}' names no data asset or inbox file",
        }
    )
    report = ValidationFindings(
        candidate={
            "model": candidate.model,
            "version": candidate.version,
            "git_commit": candidate.git_commit,
            "endpoint": candidate.endpoint,
            "deployment": candidate.deployment,
        },
        data=data,
        metrics=metrics,
        checks=[c.to_dict() for c in checks],
        champion=champion_info,
        challenger=_challenger(config, metrics, champion_metrics if not failures else None),
        smoke=_smoke(client, candidate, heldout.features if heldout else None),
        latency=_latency(client, candidate, heldout.features if heldout else None, config),
        measured_by=config.command,
        answers=changed,
    )
    report.failures = failures + [_failure(c) for c in checks if not c.passed]
    challenger = report.challenger
    if not challenger["passed"]:
        report.failures.append(
            f"{challenger['metric']} {challenger['candidate']:.4f} is worse than the champion's "
            f"{challenger['champion']:.4f} by more than {challenger['margin']:g}"
        )
    if not report.smoke["passed"]:
        report.failures.append(f"the smoke test failed ({report.smoke['detail']})")
    if not report.latency["passed"]:
        report.failures.append(
            f"p95 latency {report.latency['p95_ms']:.1f} ms is over the budget of "
            f"{report.latency['budget_ms']:g} ms"
        )
    return report


def lower_is_better(config: ValidationConfig, name: str) -> bool:
    """Whether less of metric ``name`` is better: as ``validation.challenger_better`` says, else by a word
    of its name (``val_loss``, ``rmse``, ``test_mape``; more is better where the name does not say)."""
    if config.challenger_better is not None:
        return config.challenger_better == "lower"
    return better_by_name(name) == "lower"


@dataclass(frozen=True)
class _Where:
    """Where validation.command runs (the project folder), who is told its output, and the scratch folder
    of its files."""

    root: Path
    reporter: Reporter
    scratch: Path

    @property
    def heldout_csv(self) -> Path:
        return self.scratch / "heldout.csv"

    @property
    def metrics_file(self) -> Path:
        return self.scratch / "metrics.json"


def _answer_change(champion: Candidate, theirs: list[Any] | None, ours: list[Any] | None) -> str | None:
    """How the candidate's answers to the held-out rows differ in form from the champion's (``answer_form``)
    or rename its labels (``answer_labels``), for a client of the champion; None where they do neither, or
    where no answers were read."""
    if theirs is None or ours is None:
        return None
    named = f"the champion v{champion.version} ({champion.git_commit[:7]})"
    return changed_answers(theirs, ours, named, f"the {len(ours)} held-out rows")


def _measure(
    client: EndpointClient,
    target: Candidate,
    config: ValidationConfig,
    heldout: Heldout | None,
    where: _Where,
) -> tuple[dict[str, float], str | None, list[Any] | None]:
    """The metrics of one deployment, why they could not be measured (None when they were), and its
    answers to the held-out rows: loopline's own metrics on them, or those ``validation.command`` writes
    (``_command_environment``; no answers then)."""
    if config.command is None:
        assert heldout is not None
        answers = predict_rows(client, target.endpoint, target.deployment, heldout.features)
        return metrics_for(config.task, heldout.labels, answers, config.label), None, answers
    reporter = where.reporter
    reporter.step(f"measuring {target.deployment} with `{config.command}`")
    said = f"validation.command measuring {target.deployment}"
    where.metrics_file.unlink(missing_ok=True)  # the champion's run reads none of the candidate's
    try:
        code = children.streamed(
            ["bash", "-c", config.command],
            on_line=lambda line: reporter.output(line.rstrip("\n")),
            timeout=config.command_timeout_minutes * 60,
            cwd=where.root,
            env=_command_environment(client, target, heldout is not None, where),
        )
    except OSError as exc:
        return {}, f"validation.command could not start: {exc}", None
    if code is None:
        return {}, f"{said} ran past {config.command_timeout_minutes:g} minutes and was stopped", None
    if code != 0:
        return {}, f"{said} exited with {code}", None
    return *_read_metrics(where.metrics_file, said), None


def _command_environment(
    client: EndpointClient, target: Candidate, heldout: bool, where: _Where
) -> dict[str, str]:
    """What ``validation.command`` finds: it scores through ``$LOOPLINE_SCORING_URI`` with
    ``$LOOPLINE_ENDPOINT_KEY`` (the held-out rows, where there are some, in the CSV file
    ``$LOOPLINE_HELDOUT``) and writes its metrics, a JSON object of numbers, to ``$LOOPLINE_METRICS``;
    nothing else of loopline's environment but ``_PASSED_ON``."""
    env = {
        **{name: value for name, value in os.environ.items() if name in _PASSED_ON},
        # `python` is the interpreter loopline runs in, with the project's packages, as for training
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "LOOPLINE_SCORING_URI": client.deployment_url(target.endpoint, target.deployment),
        "LOOPLINE_ENDPOINT_KEY": client.key(target.endpoint),
        "LOOPLINE_ENDPOINT": target.endpoint,
        "LOOPLINE_DEPLOYMENT": target.deployment,
        "LOOPLINE_MODEL_VERSION": str(target.version),
        "LOOPLINE_GIT_COMMIT": target.git_commit,
        "LOOPLINE_METRICS": str(where.metrics_file),
    }
    if heldout:
        env["LOOPLINE_HELDOUT"] = str(where.heldout_csv)
    return env


def _read_metrics(path: Path, said: str) -> tuple[dict[str, float], str | None]:
    if not path.is_file():
        return {}, f"{said} wrote no metrics to $LOOPLINE_METRICS"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"{said} wrote metrics that are not JSON ({exc})"
    if not isinstance(document, dict):
        return {}, f"{said} wrote {type(document).__name__} metrics; write a JSON object of name: number"
    metrics: dict[str, float] = {}
    for name, value in document.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return {}, f"{said} wrote metric {str(name)[:64]!r} as {str(value)[:64]!r}; write numbers only"
        metrics[str(name)] = float(value)
    return metrics, None

"""`loopline monitor check`: an endpoint's signals over a window, logged as an MLflow run.

Per feature: the population stability index and a Kolmogorov-Smirnov test against the model's reference
profile, and the missing-value rate; prediction drift (live predictions against the model's predictions
on the reference rows); the error rate and p99 latency from the serving statistics; and, when labels are
supplied as a data asset, the drop in performance from the training run's validation metric. With too
few samples in the window there is no decision: ``InsufficientEvidence`` (exit 3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from loopline import audit
from loopline.domain import DeploymentInfo, EndpointInfo, parse_duration, pinned, utcnow
from loopline.endpoints import service
from loopline.endpoints.client import example_request
from loopline.errors import InsufficientEvidence, Refused
from loopline.events import MonitorChecked
from loopline.instance import Instance
from loopline.monitoring.profile import ks, measured_by_category, psi, psi_categorical, text_psi
from loopline.monitoring.reference import by_position, data_reference, load_reference
from loopline.sandbox import SandboxedModel as Model
from loopline.serving.stats import window_stats
from loopline.state.schema import monitor_checks, monitor_samples
from loopline.storage.datastores import date_columns, text_columns

__all__ = ["CheckResult", "parse_window", "run_check"]


def parse_window(text: str) -> int:
    """``30m``, ``1h``, ``2d`` as seconds."""
    return int(parse_duration(text, "window").total_seconds())


@dataclass(frozen=True)
class CheckResult:
    """One monitoring check."""

    id: int
    endpoint: str
    deployment: str
    model: str
    version: int
    git_commit: str
    window_seconds: int
    samples: int
    signals: dict[str, Any]
    run_id: str | None
    workspace: str = "prod"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def _target(info: EndpointInfo, deployment: str | None) -> DeploymentInfo:
    endpoint = info.name
    if deployment:
        found = info.deployment(deployment)
        if found is None:
            raise Refused(f"endpoint '{endpoint}' has no deployment '{deployment}'")
        return found
    live = info.main_deployment()
    if live is None:
        raise Refused(f"endpoint '{endpoint}' has no deployment taking traffic to monitor")
    return live


def _samples(instance: Instance, workspace: str, endpoint: str, deployment: str, since: float) -> list[Any]:
    with instance.db.read() as connection:
        return list(
            connection.execute(
                select(monitor_samples.c.features, monitor_samples.c.prediction).where(
                    monitor_samples.c.workspace == workspace,
                    monitor_samples.c.endpoint == endpoint,
                    monitor_samples.c.deployment == deployment,
                    monitor_samples.c.at >= since,
                )
            )
        )


def _feature_signals(reference: dict[str, Any], live: Any, dates: frozenset[str]) -> dict[str, Any]:
    """PSI and KS per feature; not of dates and times (``dates``, or so profiled), new by nature."""
    psis: dict[str, float] = {}
    tests: dict[str, dict[str, float]] = {}
    for name, entry in reference["features"].items():
        if entry.get("datetime") or name in dates:
            continue
        if name in live.columns and measured_by_category(entry):
            psis[name] = round(psi_categorical(entry["categories"], list(live[name]), reference["rows"]), 6)
        elif name in live.columns and "words_edges" in entry:  # free text, by its length and its words
            psis[name] = round(text_psi(entry, live[name], reference["rows"]), 6)
        if name not in live.columns or not entry.get("numeric") or "edges" not in entry:
            continue
        values = live[name].to_numpy(dtype=float)
        psis[name] = round(psi(entry["edges"], entry["shares"], values, reference["rows"]), 6)
        statistic, p_value = ks(entry["sample"], values)
        tests[name] = {"statistic": round(statistic, 6), "p_value": p_value}
    worst = max(psis, key=lambda k: psis[k]) if psis else None
    return {
        "psi": psis,
        "ks": tests,
        "max_psi": psis[worst] if worst else None,
        "max_psi_feature": worst,
        "max_ks": max((t["statistic"] for t in tests.values()), default=None),
    }


def _answers(frame: Any) -> Any:
    """A scored table's answers as an array: its first column (``prediction``, or a table's first), as an
    endpoint's answers are measured (``validation.metrics_for``)."""
    return frame.iloc[:, 0].to_numpy()


def _prediction_drift(model: Model, reference: dict[str, Any], predictions: list[Any]) -> float | None:
    """PSI of the live predictions against the model's on the reference rows; for a model answering several
    values a row (probabilities, a table), the largest PSI among its outputs."""
    import pandas as pd

    rows = pd.DataFrame(reference["sample_rows"], columns=reference["columns"])
    live = [p for p in predictions if p is not None]
    drifts = [
        _drift(expected, values)
        for expected, values in _outputs(model.score(rows), live)
        if values and len(expected)
    ]
    return max(drifts) if drifts else None


def _outputs(scored: Any, live: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Each output of the model: its answers to the reference rows, and the live values of it. A table's
    answers are live as ``{column: value}``; several values a row as a list."""
    if scored.shape[1] > 1:
        return [
            (
                scored[column].to_numpy(),
                [p[column] for p in live if isinstance(p, dict) and p.get(column) is not None],
            )
            for column in scored.columns
        ]
    first = scored.iloc[:, 0]
    if len(first) and isinstance(first.iloc[0], list | np.ndarray):
        matrix = np.asarray([np.ravel(v) for v in first])
        width = matrix.shape[1]
        several = [np.ravel(p) for p in live if isinstance(p, list) and np.size(p) == width]
        return [(matrix[:, i], [v[i] for v in several]) for i in range(width)]
    return [(first.to_numpy(), live)]


def _drift(expected: Any, live: list[Any]) -> float:
    """PSI of ``live`` values against ``expected``: by category for up to 20 distinct ones, else by decile."""
    import pandas as pd

    if len(set(expected.tolist())) <= 20:
        shares = {
            str(k): float(v) for k, v in pd.Series(expected.astype(str)).value_counts(normalize=True).items()
        }
        return round(psi_categorical(shares, live), 6)
    edges = np.unique(np.quantile(expected.astype(float), np.linspace(0.1, 0.9, 9)))
    counts = np.histogram(expected.astype(float), bins=[-np.inf, *edges, np.inf])[0]
    return round(psi(edges.tolist(), (counts / counts.sum()).tolist(), np.asarray(live, dtype=float)), 6)


def _reference(
    instance: Instance,
    target: DeploymentInfo,
    columns: list[str],
    texts: frozenset[str],
    dates: frozenset[str],
) -> tuple[dict[str, Any] | None, str]:
    """What the live rows are compared with, and where it came from: the profile of the training
    features the run logged, else of ``monitoring.reference_data`` (a data asset of training rows, its
    columns that the live rows have), else nothing."""
    stored = load_reference(instance, target.content_digest)
    if stored is not None:
        return stored, f"the training run's {instance.settings.config.monitoring.reference_artifact}"
    named = instance.settings.config.monitoring.reference_data
    if named is None:
        return None, (
            "none: the training run logged no reference data; set monitoring.reference_data to a data "
            "asset of training rows (`loopline data upload train PATH`, PATH the table the training read)"
        )
    from loopline.data import get_asset, parse_asset

    asset = get_asset(instance, *parse_asset(named))
    return data_reference(instance, asset, columns, texts, dates), f"data asset {asset.name}:{asset.version}"


def _performance(
    instance: Instance, model: Model, target: DeploymentInfo, labels: str, texts: frozenset[str]
) -> dict[str, Any]:
    from loopline.data import get_asset, parse_asset, read_asset
    from loopline.validation import lower_is_better, metrics_for, split_labels

    config = instance.settings.config.validation
    name, version = parse_asset(labels)
    asset = get_asset(instance, name, version)
    features, truth = split_labels(
        read_asset(instance, asset, texts), config.label, f"the labels {asset.reference}"
    )
    now = metrics_for(config.task, truth, _answers(model.score(features)), config.label)
    metric = config.compared_on
    reference = _training_metric(instance, target, metric, tuple(now))
    drop = None
    if reference is not None and metric in now:
        drop = now[metric] - reference[1] if lower_is_better(config, metric) else reference[1] - now[metric]
    return {
        "labels": f"{asset.name}:{asset.version}",
        "metric": metric,
        "current": now.get(metric),
        "reference": reference[1] if reference is not None else None,
        "reference_metric": reference[0] if reference is not None else None,
        "performance_drop": drop,
    }


def _training_metric(
    instance: Instance, target: DeploymentInfo, metric: str, measured: tuple[str, ...]
) -> tuple[str, float] | None:
    """What the training run of the deployed version logged of ``metric``: under its name, else under
    the one name that says it is that measure of those ``measured`` (a booster's ``val_auc`` for
    roc_auc), held-out ones first; None where it logged none."""
    from loopline import catalog
    from loopline.metric_names import held_out_first, measured_as

    versions = [
        v
        for v in catalog.list_versions(instance.db, name=target.model, commit=target.git_commit)
        if v.content_digest == target.content_digest and v.run_id
    ]
    if not versions:
        return None
    logged = instance.store("dev").run(versions[0].run_id or "").metrics
    if metric in logged:
        return metric, float(logged[metric])
    named = held_out_first([name for name in logged if measured_as(measured, name) == metric])
    return (named[0], float(logged[named[0]])) if named else None


def _log_run(
    instance: Instance,
    workspace: str,
    target: DeploymentInfo,
    endpoint: str,
    window: str,
    samples: int,
    signals: dict[str, Any],
) -> str | None:
    store = instance.store(workspace)
    experiment = f"monitoring-{target.model}"
    store.provision(experiment)
    metrics = {f"psi_{k}": v for k, v in signals.get("psi", {}).items()}
    metrics.update({f"ks_{k}": v["statistic"] for k, v in signals.get("ks", {}).items()})
    for key in ("max_psi", "prediction_psi", "missing_rate", "error_rate", "p99_ms", "performance_drop"):
        if isinstance(signals.get(key), int | float):
            metrics[key] = float(signals[key])
    tags = {
        "model": target.model,
        "model_version": str(target.version),
        "git_commit": target.git_commit,
        "endpoint": endpoint,
        "deployment": target.name,
        "drift_reference": str(signals.get("drift_reference", "")),
        "window": window,
        "samples": str(samples),
    }
    return store.log_run(experiment, f"check {endpoint} {time.strftime('%Y-%m-%d %H:%M')}", metrics, tags)


def run_check(
    instance: Instance,
    endpoint: str,
    *,
    window: str | None = None,
    deployment: str | None = None,
    labels: str | None = None,
    workspace: str | None = None,
) -> CheckResult:
    """Compute and record an endpoint's monitoring signals."""
    import pandas as pd

    instance.db.require_current(instance.root)
    config = instance.settings.config.monitoring
    window = window or config.window
    seconds = parse_window(window)
    info = service.get_endpoint(instance, endpoint, workspace)
    workspace = info.workspace
    target = _target(info, deployment)
    since = time.time() - seconds
    rows = _samples(instance, workspace, endpoint, target.name, since)
    stats = window_stats(instance.db, workspace, endpoint, target.name, since)
    if len(rows) < config.min_samples and _conversations(instance, workspace, target):
        return _conversation_check(instance, workspace, endpoint, target, window, stats)
    if len(rows) < config.min_samples:
        _record(instance, workspace, endpoint, target, seconds, len(rows), {}, "insufficient", None)
        answered = (
            f", from {stats.requests:,} requests answered (each serving process samples at most "
            f"monitoring.sample_per_second, {config.sample_per_second:g}, rows a second)"
            if stats.requests
            else ""
        )
        raise InsufficientEvidence(
            f"insufficient evidence: {len(rows)} samples of {endpoint}/{target.name} in the last {window}"
            f"{answered} (monitoring.min_samples is {config.min_samples}; what loopline sends itself, such "
            "as `endpoint invoke` and smoke tests, is not sampled); no decision"
        )
    live = pd.DataFrame([r.features for r in rows])
    signals: dict[str, Any] = {
        "samples": len(rows),
        "missing_rate": round(float(live.isna().mean().mean()), 6),
        "error_rate": stats.error_rate,
        "p99_ms": stats.p99_ms,
        "requests": stats.requests,
    }
    folder = instance.model_files(workspace, target.content_digest, target.source_uri)
    # Read from a CSV of training rows or labels as the endpoint takes them and answers.
    texts = text_columns(folder, instance.settings.config.validation.label_columns)
    dates = date_columns(folder)
    reference, source = _reference(instance, target, list(live.columns), texts, dates)
    if reference is not None and (taken := by_position(reference, list(live.columns))) is not reference:
        reference, source = taken, f"{source}, its columns by position (the model takes an array)"
    signals["drift_reference"] = source
    with Model(folder, instance.settings.config.sandbox) as model:
        if reference is not None:
            signals.update(_feature_signals(reference, live, dates))
            signals["prediction_psi"] = _prediction_drift(model, reference, [r.prediction for r in rows])
        if labels:
            signals.update(_performance(instance, model, target, labels, texts))
    run_id = _log_run(instance, workspace, target, endpoint, window, len(rows), signals)
    check_id = _record(instance, workspace, endpoint, target, seconds, len(rows), signals, "ok", run_id)
    return CheckResult(
        check_id,
        endpoint,
        target.name,
        target.model,
        target.version,
        target.git_commit,
        seconds,
        len(rows),
        signals,
        run_id,
        workspace,
    )


def _conversations(instance: Instance, workspace: str, target: DeploymentInfo) -> bool:
    """Whether the deployment's model is a chat model or an agent (its input example is a language model's
    request, ``domain.LLM_KEYS``): its requests are counted, never sampled, as they hold no table."""
    example = example_request(instance.model_files(workspace, target.content_digest, target.source_uri))
    return example is not None and example.llm


def _conversation_check(
    instance: Instance, workspace: str, endpoint: str, target: DeploymentInfo, window: str, stats: Any
) -> CheckResult:
    """A chat model's or agent's check: its errors and latency over the requests it answered; no drift, as
    its requests are conversations, not rows of a table."""
    least = instance.settings.config.monitoring.min_samples
    seconds = parse_window(window)
    if stats.requests < least:
        _record(instance, workspace, endpoint, target, seconds, 0, {}, "insufficient", None)
        raise InsufficientEvidence(
            f"insufficient evidence: {stats.requests} requests answered by {endpoint}/{target.name} in the "
            f"last {window} (a chat model's or agent's requests are counted, not sampled; "
            f"monitoring.min_samples is {least}; what loopline sends itself, such as `endpoint invoke` and "
            "smoke tests, is not counted); no decision"
        )
    signals: dict[str, Any] = {
        "samples": 0,
        "requests": stats.requests,
        "error_rate": stats.error_rate,
        "p99_ms": stats.p99_ms,
        "drift_reference": "none: the model answers conversations (a chat model's or an agent's requests), "
        "not rows of a table",
    }
    run_id = _log_run(instance, workspace, target, endpoint, window, 0, signals)
    check_id = _record(instance, workspace, endpoint, target, seconds, 0, signals, "ok", run_id)
    model = (target.model, target.version, target.git_commit)
    return CheckResult(check_id, endpoint, target.name, *model, seconds, 0, signals, run_id, workspace)


def _record(
    instance: Instance,
    workspace: str,
    endpoint: str,
    target: DeploymentInfo,
    seconds: int,
    samples: int,
    signals: dict[str, Any],
    outcome: str,
    run_id: str | None,
) -> int:
    with instance.db.write() as connection:
        check_id = connection.execute(
            insert(monitor_checks).values(
                workspace=workspace,
                endpoint=endpoint,
                deployment=target.name,
                **pinned(target),
                window_seconds=seconds,
                samples=samples,
                signals=signals,
                outcome=outcome,
                run_id=run_id,
                at=utcnow(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        audit.append(
            connection,
            MonitorChecked(
                actor=instance.actor,
                workspace=workspace,
                **pinned(target),
                target=f"{endpoint}/{target.name}",
                outcome=outcome,
                details={
                    "check": check_id,
                    "samples": samples,
                    "window_seconds": seconds,
                    **{
                        k: signals.get(k)
                        for k in ("max_psi", "prediction_psi", "error_rate", "performance_drop")
                    },
                },
            ),
        )
    return int(check_id)

"""The SDK: monitoring checks, policies and endpoint metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.api._common import PathLike, endpoint_workspace, provisioned
from loopline.api.results import EndpointMetrics
from loopline.errors import UsageError

if TYPE_CHECKING:
    from loopline.monitoring.check import CheckResult
    from loopline.monitoring.policy import Decision


def monitor_check(
    endpoint: str | None = None,
    *,
    workspace: str | None = None,
    window: str | None = None,
    deployment: str | None = None,
    labels: str | None = None,
    project: PathLike | None = None,
) -> CheckResult:
    """An endpoint's monitoring signals over a window (default: the prod endpoint)."""
    from loopline.monitoring.check import run_check

    instance = provisioned(project)
    return run_check(
        instance,
        endpoint or instance.settings.prod_endpoint,
        window=window,
        deployment=deployment,
        labels=labels,
        workspace=workspace or (None if endpoint else "prod"),
    )


def policy_evaluate(
    policy: PathLike | None = None,
    *,
    endpoint: str | None = None,
    workspace: str | None = None,
    act: bool = False,
    project: PathLike | None = None,
) -> Decision:
    """Decide from the latest check with a policy file (default ``monitoring.policy``); act when asked."""
    from loopline.loops.policy import carry_out
    from loopline.monitoring.policy import evaluate_policy, record

    instance = provisioned(project)
    path = Path(policy) if policy else instance.root / instance.settings.config.monitoring.policy
    where = endpoint_workspace(instance, endpoint, workspace)
    decision = evaluate_policy(instance, path, endpoint or instance.settings.prod_endpoint, where)
    return carry_out(instance, decision) if act else record(instance, decision)


def endpoint_metrics(
    name: str,
    *,
    workspace: str | None = None,
    minutes: int = 60,
    step_seconds: int = 30,
    project: PathLike | None = None,
) -> EndpointMetrics:
    """Requests per second, error rate and p50/p99 latency of an endpoint over the last ``minutes``."""
    import time

    from loopline.endpoints import service
    from loopline.serving.stats import series

    if not 1 <= minutes <= 120 or not 1 <= step_seconds <= 3600:
        raise UsageError(
            "minutes must be 1 to 120 (statistics are kept two hours) and step_seconds 1 to 3600"
        )
    instance = provisioned(project)
    where = service.get_endpoint(instance, name, workspace).workspace
    points = series(instance.db, where, name, time.time() - minutes * 60, step_seconds)
    return EndpointMetrics(name, minutes, step_seconds, points)


def latest_check(
    endpoint: str | None = None, *, workspace: str | None = None, project: PathLike | None = None
) -> dict[str, Any] | None:
    """The newest monitoring check of an endpoint (default: the prod endpoint), or None without one."""
    from loopline.errors import InsufficientEvidence
    from loopline.monitoring.policy import latest_check as newest

    instance = provisioned(project)
    where = endpoint_workspace(instance, endpoint, workspace)
    try:
        row = newest(instance, endpoint or instance.settings.prod_endpoint, where)
    except InsufficientEvidence:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}

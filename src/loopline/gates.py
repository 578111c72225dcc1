"""Gates: metric thresholds read from a YAML file and checked against a run's metrics."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopline.domain import GateResult, MetricCheck
from loopline.errors import ConfigError
from loopline.yamlfile import DuplicateKey, Loader

__all__ = [
    "Thresholds",
    "evaluate",
    "failures",
    "load_thresholds",
    "misspelt",
    "parse_bounds",
    "parse_yaml",
    "read_text",
    "read_yaml",
]


@dataclass(frozen=True)
class Thresholds:
    """Each metric's lower and upper bound (either may be absent, not both)."""

    name: str
    bounds: dict[str, tuple[float | None, float | None]]


def load_thresholds(path: Path) -> Thresholds:
    """Read a thresholds file: ``metrics: {accuracy: {min: 0.9}, log_loss: {max: 0.4}}``."""
    where = path.name
    data = read_yaml(path, "create it or set gate.file in loopline.yaml", what="gate file")
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict) or not metrics:
        raise ConfigError(f"{where}: needs a 'metrics' mapping, e.g. metrics: {{accuracy: {{min: 0.9}}}}")
    bounds = {str(metric): parse_bounds(where, str(metric), spec) for metric, spec in metrics.items()}
    return Thresholds(name=where, bounds=bounds)


def read_yaml(path: Path, fix: str, *, what: str) -> Any:
    """The YAML document in ``path``; a missing or unreadable file (with ``fix``, what to do) or a syntax
    error (with its line) is refused as a configuration error."""
    return parse_yaml(read_text(path, fix, what=what), path.name)


def read_text(path: Path, fix: str, *, what: str) -> str:
    """The text of ``path``, refused as a configuration error when missing (with ``fix``) or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; {fix}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text; save it as UTF-8") from None


def parse_yaml(text: str, name: str) -> Any:
    """The YAML document in ``text`` (of the file ``name``); a syntax error is refused with its line."""
    try:
        return yaml.load(text, Loader=Loader)  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        if isinstance(exc, DuplicateKey):
            raise ConfigError(f"{name}{line}: {exc.problem}") from None
        raise ConfigError(f"{name}{line}: not valid YAML; fix the syntax there") from None


def parse_bounds(
    where: str, metric: str, spec: Any, section: str = "metrics"
) -> tuple[float | None, float | None]:
    """``{min: a, max: b}`` (either may be absent, not both) of ``section.metric`` in the file ``where``."""
    if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
        raise ConfigError(f"{where}: {section}.{metric} needs 'min' and/or 'max' (and nothing else)")
    low, high = (_number(where, f"{section}.{metric}.{key}", spec.get(key)) for key in ("min", "max"))
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}: {section}.{metric} has min {low:g} above max {high:g}")
    return low, high


def _number(where: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}")
    return float(value)


def evaluate(thresholds: Thresholds, metrics: dict[str, float]) -> GateResult:
    """Check every threshold; a metric the run did not log fails."""
    checks = tuple(
        MetricCheck(metric=metric, value=metrics.get(metric), min=low, max=high)
        for metric, (low, high) in thresholds.bounds.items()
    )
    return GateResult(name=thresholds.name, checks=checks)


def failures(result: GateResult, logged: dict[str, float]) -> str:
    """What failed in ``result``, one check after another; for a metric the run did not log, the names it
    did (``logged``), or the one meant where a name is one slip away from it."""
    said = []
    for check in result.failures:
        if check.value is not None:
            said.append(check.describe())
            continue
        meant = misspelt(check.metric, logged)
        if meant:
            said.append(f"{check.describe()} (the run logged '{meant}': the gate file names it otherwise)")
        else:
            said.append(f"{check.describe()} (the run logged {', '.join(sorted(logged)) or 'no metric'})")
    return "; ".join(said)


def misspelt(metric: str, logged: Iterable[str]) -> str | None:
    """The metric of ``logged`` that ``metric`` is one slip away from (``acuracy``, ``logloss``), if any: a
    misspelling no later run mends, unlike another metric (``balanced_accuracy`` is not ``accuracy``)."""
    meant = difflib.get_close_matches(metric, list(logged), n=1, cutoff=0.85)
    return meant[0] if meant else None

"""Ranking candidate runs: a primary metric with a direction, weighted secondary metrics, hard constraints.

A ranking file (``ranking.yaml`` by default)::

    primary: {metric: roc_auc, direction: maximize}
    secondary:                    # optional
      f1: {direction: maximize, weight: 0.5}
      log_loss: {direction: minimize, weight: 0.2}
    constraints:                  # optional; the same bounds as a gate file's metrics
      accuracy: {min: 0.9}

Each metric is scaled to 0..1 across the candidates that have it (1 the best, by its direction; all 1 when
they are equal), and a run's score is the weighted mean of its scaled metrics, the primary weighing 1 (a
secondary metric a run did not log counts 0). Runs that miss the primary metric or break a constraint are
not eligible; they are listed after the others, with why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loopline.errors import ConfigError
from loopline.gates import Thresholds, evaluate, misspelt, parse_bounds, read_yaml

__all__ = ["Candidate", "Ranked", "Ranking", "load_ranking", "rank"]

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Ranking:
    """How to rank runs: (metric, direction) first, then (metric, direction, weight), then hard bounds."""

    name: str
    primary: tuple[str, Direction]
    secondary: tuple[tuple[str, Direction, float], ...]
    constraints: Thresholds

    @property
    def metrics(self) -> list[str]:
        """Every metric the ranking reads, primary first."""
        names = [self.primary[0], *(m for m, _, _ in self.secondary), *self.constraints.bounds]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Candidate:
    """A run to rank: its id, its metrics, and what to show of it."""

    run_id: str
    metrics: dict[str, float]
    git_commit: str = ""
    start_time: int = 0


@dataclass(frozen=True)
class Ranked:
    """A candidate with its place: rank (1 the best; None when not eligible), score, and why not eligible."""

    candidate: Candidate
    rank: int | None
    score: float | None
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        """Whether the run has the primary metric and meets every constraint."""
        return not self.reasons

    def to_dict(self, ranking: Ranking) -> dict[str, Any]:
        """A JSON-ready mapping, with the ranking's metrics of the run."""
        metrics = self.candidate.metrics
        return {
            "rank": self.rank,
            "run_id": self.candidate.run_id,
            "git_commit": self.candidate.git_commit or None,
            "score": None if self.score is None else round(self.score, 6),
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "metrics": {m: metrics[m] for m in ranking.metrics if m in metrics},
        }


def load_ranking(path: Path) -> Ranking:
    """Read a ranking file; a missing or malformed one is refused with what to fix."""
    where = path.name
    data = read_yaml(path, "create it (see docs/cli.md, compare)", what="ranking file")
    if not isinstance(data, dict) or set(data) - {"primary", "secondary", "constraints"}:
        raise ConfigError(
            f"{where}: needs 'primary' (and optionally 'secondary', 'constraints'), nothing else"
        )
    primary = data.get("primary")
    if not isinstance(primary, dict) or set(primary) - {"metric", "direction"} or "metric" not in primary:
        raise ConfigError(
            f"{where}: primary needs 'metric' and 'direction', e.g. {{metric: auc, direction: maximize}}"
        )
    secondary = data.get("secondary") or {}
    if not isinstance(secondary, dict):
        raise ConfigError(f"{where}: secondary must map metrics to {{direction, weight}}")
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise ConfigError(f"{where}: constraints must map metrics to {{min, max}}, as a gate file does")
    return Ranking(
        name=where,
        primary=(str(primary["metric"]), _direction(where, "primary", primary.get("direction"))),
        secondary=tuple(_secondary(where, str(metric), spec) for metric, spec in secondary.items()),
        constraints=Thresholds(
            where,
            {str(m): parse_bounds(where, str(m), spec, "constraints") for m, spec in constraints.items()},
        ),
    )


def _direction(where: str, key: str, value: Any) -> Direction:
    if value not in ("maximize", "minimize"):
        raise ConfigError(f"{where}: {key}.direction must be maximize or minimize, not {value!r}")
    return "maximize" if value == "maximize" else "minimize"


def _secondary(where: str, metric: str, spec: Any) -> tuple[str, Direction, float]:
    if not isinstance(spec, dict) or set(spec) - {"direction", "weight"}:
        raise ConfigError(f"{where}: secondary.{metric} needs 'direction' and 'weight' (and nothing else)")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < math.inf:
        raise ConfigError(f"{where}: secondary.{metric}.weight must be a number of 0 or more, not {weight!r}")
    return metric, _direction(where, f"secondary.{metric}", spec.get("direction")), float(weight)


def rank(ranking: Ranking, candidates: Sequence[Candidate]) -> list[Ranked]:
    """The candidates best first: the eligible ones by score (then primary metric, then newest), then the
    others (by primary metric), each with why it is not eligible."""
    _logged_somewhere(ranking, candidates)
    primary, direction = ranking.primary
    reasons = {c.run_id: _reasons(ranking, c) for c in candidates}
    eligible = [c for c in candidates if not reasons[c.run_id]]
    scaled = {
        metric: _scale([c.metrics.get(metric) for c in eligible], way)
        for metric, way in [(primary, direction), *((m, d) for m, d, _ in ranking.secondary)]
    }
    total = 1.0 + sum(w for _, _, w in ranking.secondary)
    scores = {
        c.run_id: (scaled[primary][i] + sum(w * scaled[m][i] for m, _, w in ranking.secondary)) / total
        for i, c in enumerate(eligible)
    }
    sign = 1.0 if direction == "maximize" else -1.0

    def oriented(c: Candidate) -> float:
        value = c.metrics.get(primary)
        return -math.inf if value is None or math.isnan(value) else sign * value

    eligible.sort(key=lambda c: (scores[c.run_id], oriented(c), c.start_time), reverse=True)
    others = sorted((c for c in candidates if reasons[c.run_id]), key=oriented, reverse=True)
    return [
        *(Ranked(c, place, scores[c.run_id], ()) for place, c in enumerate(eligible, start=1)),
        *(Ranked(c, None, None, reasons[c.run_id]) for c in others),
    ]


def _logged_somewhere(ranking: Ranking, candidates: Sequence[Candidate]) -> None:
    """Refuse a ranking metric that none of the runs logged: a name the file spells otherwise than the
    script (``logloss`` for ``log_loss``) would leave every run unranked, or its weight counting for none."""
    logged = sorted({name for c in candidates for name in c.metrics})
    roles = [(ranking.primary[0], "primary"), *((m, f"secondary.{m}") for m, _, _ in ranking.secondary)]
    for metric, role in roles:
        if candidates and metric not in logged:
            meant = misspelt(metric, logged)
            hint = f"; did you mean '{meant}'?" if meant else ""
            raise ConfigError(
                f"{ranking.name}: none of the {len(candidates)} runs ranked logged '{metric}' ({role}); "
                f"they logged {', '.join(logged) or 'no metric'}{hint}"
            )


def _reasons(ranking: Ranking, candidate: Candidate) -> tuple[str, ...]:
    primary = candidate.metrics.get(ranking.primary[0])
    if primary is None or math.isnan(primary):
        return (f"no {ranking.primary[0]}",)
    result = evaluate(ranking.constraints, candidate.metrics)
    return tuple(check.describe() for check in result.checks if not check.passed)


def _scale(values: list[float | None], direction: Direction) -> list[float]:
    """Each value on 0..1 among the others, 1 the best; a missing value 0; all 1 when they are equal."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return [0.0] * len(values)
    low, high = min(present), max(present)
    scaled = []
    for value in values:
        if value is None or math.isnan(value):
            scaled.append(0.0)
        elif high == low:
            scaled.append(1.0)
        else:
            share = (value - low) / (high - low)
            scaled.append(share if direction == "maximize" else 1.0 - share)
    return scaled

"""Ranking runs: directions, weights, constraints, missing metrics and ties."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from loopline.errors import ConfigError
from loopline.ranking import Candidate, load_ranking, rank


def ranking(tmp_path: Path, **spec: object) -> object:
    path = tmp_path / "ranking.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_ranking(path)


def test_the_primary_direction_orders_runs_and_ties_go_to_the_newest(tmp_path: Path) -> None:
    spec = ranking(tmp_path, primary={"metric": "rmse", "direction": "minimize"})
    runs = [
        Candidate("a", {"rmse": 3.0}, start_time=1),
        Candidate("b", {"rmse": 1.0}, start_time=2),
        Candidate("c", {"rmse": 1.0}, start_time=3),
        Candidate("d", {"rmse": 2.0}, start_time=4),
    ]
    ranked = rank(spec, runs)  # type: ignore[arg-type]
    assert [(r.candidate.run_id, r.rank) for r in ranked] == [("c", 1), ("b", 2), ("d", 3), ("a", 4)]
    assert [r.score for r in ranked] == [1.0, 1.0, 0.5, 0.0]


def test_weighted_secondary_metrics_can_overturn_a_small_lead(tmp_path: Path) -> None:
    spec = ranking(
        tmp_path,
        primary={"metric": "auc", "direction": "maximize"},
        secondary={"latency_ms": {"direction": "minimize", "weight": 2}},
    )
    runs = [
        Candidate("fast", {"auc": 0.90, "latency_ms": 5}),
        Candidate("slow", {"auc": 0.91, "latency_ms": 50}),
    ]
    ranked = rank(spec, runs)  # type: ignore[arg-type]
    assert [r.candidate.run_id for r in ranked] == ["fast", "slow"]
    assert ranked[0].score == pytest.approx(2 / 3) and ranked[1].score == pytest.approx(1 / 3)
    # a run that did not log a secondary metric counts 0 for it, and stays eligible
    ranked = rank(spec, [*runs, Candidate("silent", {"auc": 0.95})])  # type: ignore[arg-type]
    assert [r.candidate.run_id for r in ranked] == ["fast", "silent", "slow"]
    assert all(r.eligible for r in ranked)


def test_runs_without_the_primary_metric_or_outside_a_constraint_come_last_with_why(tmp_path: Path) -> None:
    spec = ranking(
        tmp_path,
        primary={"metric": "auc", "direction": "maximize"},
        constraints={"size_mb": {"max": 100}},
    )
    runs = [
        Candidate("big", {"auc": 0.99, "size_mb": 500}),
        Candidate("none", {"size_mb": 1}),
        Candidate("ok", {"auc": 0.8, "size_mb": 10}),
        Candidate("unknown-size", {"auc": 0.9}),
    ]
    ranked = rank(spec, runs)  # type: ignore[arg-type]
    assert [(r.candidate.run_id, r.rank) for r in ranked] == [
        ("ok", 1),
        ("big", None),
        ("unknown-size", None),
        ("none", None),
    ]
    assert ranked[1].reasons == ("size_mb = 500 (needs <= 100)",)
    assert ranked[2].reasons == ("size_mb is missing",)
    assert ranked[3].reasons == ("no auc",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("primary: {metric: auc}", "primary.direction must be maximize or minimize"),
        ("primary: {metric: auc, direction: up}", "primary.direction must be maximize or minimize, not 'up'"),
        (
            "primary: {metric: auc, direction: maximize}\nsecondary: {f1: {weight: -1, direction: maximize}}",
            "secondary.f1.weight must be a number of 0 or more",
        ),
        (
            "primary: {metric: auc, direction: maximize}\nconstraints: {f1: {least: 2}}",
            "constraints.f1 needs 'min' and/or 'max'",
        ),
        ("primary: [", "not valid YAML"),
        ("weights: {}", "needs 'primary'"),
    ],
)
def test_a_malformed_ranking_file_is_refused_with_what_to_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "ranking.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_ranking(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_ranking(tmp_path / "missing.yaml")


def test_a_metric_none_of_the_runs_logged_is_refused_with_the_names_they_did(tmp_path: Path) -> None:
    """Every run unranked (or a weight counting for none) is what a misspelt name would give."""
    runs = [Candidate("a", {"log_loss": 0.3, "accuracy": 0.9}), Candidate("b", {"log_loss": 0.2})]
    misspelt = ranking(tmp_path, primary={"metric": "logloss", "direction": "minimize"})
    with pytest.raises(ConfigError) as refused:
        rank(misspelt, runs)  # type: ignore[arg-type]
    assert refused.value.message == (
        "ranking.yaml: none of the 2 runs ranked logged 'logloss' (primary); they logged accuracy, log_loss; "
        "did you mean 'log_loss'?"
    )
    weighted = ranking(
        tmp_path,
        primary={"metric": "log_loss", "direction": "minimize"},
        secondary={"latency_ms": {"direction": "minimize", "weight": 0.5}},
    )
    with pytest.raises(
        ConfigError, match=r"logged 'latency_ms' \(secondary\.latency_ms\); they logged accuracy, log_loss$"
    ):
        rank(weighted, runs)  # type: ignore[arg-type]
    assert [r.candidate.run_id for r in rank(weighted, [*runs, Candidate("c", {"latency_ms": 4.0})])][
        -1
    ] == "c"

"""Gates: thresholds files and their evaluation."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from loopline.errors import ConfigError
from loopline.gates import evaluate, failures, load_thresholds


def thresholds(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


def test_min_and_max_bounds_are_checked(tmp_path: Path) -> None:
    gate = load_thresholds(thresholds(tmp_path, "metrics:\n  accuracy: {min: 0.9}\n  loss: {max: 0.5}\n"))
    assert evaluate(gate, {"accuracy": 0.95, "loss": 0.2}).passed
    result = evaluate(gate, {"accuracy": 0.85, "loss": 0.2})
    assert not result.passed
    assert [c.describe() for c in result.failures] == ["accuracy = 0.85 (needs >= 0.9)"]


def test_a_missing_metric_fails(tmp_path: Path) -> None:
    gate = load_thresholds(thresholds(tmp_path, "metrics:\n  auc: {min: 0.5}\n"))
    result = evaluate(gate, {"accuracy": 1.0})
    assert not result.passed
    assert result.failures[0].describe() == "auc is missing"


def test_bounds_are_inclusive(tmp_path: Path) -> None:
    gate = load_thresholds(thresholds(tmp_path, "metrics:\n  a: {min: 0.5, max: 0.5}\n"))
    assert evaluate(gate, {"a": 0.5}).passed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics: {}\n", "needs a 'metrics' mapping"),
        ("metrics:\n  a: {low: 1}\n", "metrics.a needs 'min' and/or 'max'"),
        ("metrics:\n  a: {min: high}\n", "metrics.a.min must be a number"),
        ("metrics:\n  a: {min: 2, max: 1}\n", "metrics.a has min 2 above max 1"),
        ("metrics: [\n", "gate.yaml line 2: not valid YAML"),
        (
            "metrics:\n  a: {min: 0.5}\n  a: {min: 0.9}\n",
            "gate.yaml line 3: 'a' is a key here already (line 2), and YAML would keep only the last",
        ),
    ],
)
def test_bad_thresholds_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_thresholds(thresholds(tmp_path, text))


def test_missing_file_says_where_to_configure_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set gate\.file in loopline\.yaml"):
        load_thresholds(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.mkdir(), r"cannot read gate file .*gate\.yaml: Is a directory"),
        (
            lambda path: path.write_bytes(b"metrics:\n  caf\xe9: {min: 1}\n"),
            "is not UTF-8 text; save it as UTF-8",
        ),
    ],
    ids=["a folder", "latin-1"],
)
def test_an_unreadable_gate_file_is_refused_with_the_reason(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "gate.yaml"
    make(path)
    with pytest.raises(ConfigError, match=message):
        load_thresholds(path)


def test_a_metric_the_run_did_not_log_is_said_with_the_names_it_did(tmp_path: Path) -> None:
    gate = load_thresholds(
        thresholds(tmp_path, "metrics:\n  acuracy: {min: 0.5}\n  auc: {min: 0.5}\n  f1: {min: 0.99}\n")
    )
    logged = {"accuracy": 0.9, "f1": 0.8, "log_loss": 0.2}
    assert failures(evaluate(gate, logged), logged) == (
        "acuracy is missing (the run logged 'accuracy': the gate file names it otherwise); "
        "auc is missing (the run logged accuracy, f1, log_loss); "
        "f1 = 0.8 (needs >= 0.99)"
    )
    assert failures(evaluate(gate, {}), {}).startswith("acuracy is missing (the run logged no metric)")

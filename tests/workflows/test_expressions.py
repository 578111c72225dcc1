"""The expression subset of the local runner behaves as GitHub's."""

from __future__ import annotations

import pytest

from loopline.workflows.expressions import ExpressionError, evaluate, interpolate

CONTEXT = {
    "needs": {"gate": {"outputs": {"enabled": "true"}, "result": "success"}},
    "inputs": {"commit": "abc1234", "reason": ""},
    "github": {"event_name": "push", "sha": "f" * 40},
    "steps": {"x": {"outputs": {"n": "3"}}},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("needs.gate.outputs.enabled == 'true'", True),
        ("needs.gate.outputs.enabled == 'TRUE'", True),
        ("needs.gate.outputs['enabled'] != 'false'", True),
        ("inputs.reason || 'none given'", "none given"),
        ("inputs.commit && format('--commit {0}', inputs.commit)", "--commit abc1234"),
        ("github.event_name == 'push' && !inputs.reason", True),
        ("steps.x.outputs.n > 2", True),
        ("needs.missing.outputs.enabled", None),
        ("contains('merge_group push', github.event_name)", True),
        ("startsWith(github.sha, 'fff')", True),
        ("(1 == 1) && (2 < 1)", False),
        ("fromJSON('[1, 2]')", [1, 2]),
    ],
)
def test_expressions_evaluate_as_on_github(expression: str, value: object) -> None:
    assert evaluate(expression, CONTEXT) == value


def test_interpolation_replaces_every_placeholder() -> None:
    text = "sha=${{ github.sha }} enabled=${{ needs.gate.outputs.enabled }} empty=${{ inputs.reason }}"
    assert interpolate(text, CONTEXT) == f"sha={'f' * 40} enabled=true empty="


def test_status_functions_come_from_the_runner() -> None:
    assert evaluate("success() && true", CONTEXT, {"success": lambda: False}) is False
    assert evaluate("always()", CONTEXT, {"always": lambda: True}) is True


@pytest.mark.parametrize("expression", ["hashFiles('x')", "a ==", "'unterminated"])
def test_unsupported_or_broken_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression, CONTEXT)

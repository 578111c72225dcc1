"""What a model that failed in the sandbox for want of a variable or a connection is told."""

from __future__ import annotations

import pytest

from loopline.denied import denied_advice


@pytest.mark.parametrize(
    "reason",
    [
        "OpenAIError: The api_key client option must be set either by passing api_key to the client or by "
        "setting the OPENAI_API_KEY environment variable",
        "MlflowException: Failed to run user code from agent.py. Error: 'SUPPORT_LLM_KEY'.",
        "KeyError: 'ANTHROPIC_API_KEY'",
        "URLError: <urlopen error [Errno 13] Permission denied>",
        "APIConnectionError: Connection error.",
        "ConnectError: [Errno -3] Temporary failure in name resolution",
    ],
)
def test_a_model_wanting_a_variable_or_a_connection_is_told_what_to_name(reason: str) -> None:
    assert "sandbox.environment" in denied_advice(reason) and "connect_ports" in denied_advice(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "ValueError: could not convert string to float: 'abc'",
        "KeyError: 'tenure'",
        "ModuleNotFoundError: No module named 'features'",
    ],
)
def test_any_other_failure_gets_no_such_advice(reason: str) -> None:
    assert denied_advice(reason) == ""

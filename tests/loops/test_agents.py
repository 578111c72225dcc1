"""A repository whose training logs an MLflow agent (a ``ResponsesAgent`` logged from code): set up by
``init --existing``, registered, released through the smoke test of its input example, served and
monitored by its errors and latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import loopline
from loopline.errors import InsufficientEvidence
from tests.helpers import TRAINING_SCRIPTS, commit_all, edit_yaml, git, tree, wait_until
from tests.servers import Server, free_port

pytestmark = pytest.mark.slow


def agent_repository(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "--quiet")
    tree(
        path,
        {
            "agent.py": (TRAINING_SCRIPTS / "support_agent.py").read_text(),
            "train.py": (TRAINING_SCRIPTS / "support_agent_train.py").read_text(),
        },
    )
    commit_all(path, "Support agent")
    return path


def test_an_agent_is_set_up_registered_released_and_monitored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = agent_repository(tmp_path / "support")
    result = loopline.init_existing(project, tier="full")
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    # no column of true values to measure a conversation against: a validation of the project's own
    assert config["validation"] == {
        "command": "python validate.py",
        "data": "heldout",
        "thresholds": {"accuracy": {"min": 0.9}},
        "challenger_metric": "accuracy",
    }
    assert any("measures this chat model or agent with validation.command" in n for n in result.notes)
    assert not any("monitoring compares live requests with training rows" in n for n in result.notes)
    edit_yaml(project / "loopline.yaml", tier="simple", monitoring={"min_samples": 20})
    loopline.up(project)
    commit_all(project, "Set up loopline")

    registered = loopline.inner_loop(project)  # the sandbox's check answered the agent's question
    assert registered.shared is not None and registered.shared.version == 1
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    released = loopline.outer_loop_prod(project)  # its smoke test: the input example, through the endpoint
    assert released.version == 1 and released.endpoint == "support"
    key = loopline.endpoint_keys("support", workspace="prod", regenerate="primary", project=project)
    with Server(project, "prod", port=port) as server:
        server.wait_for("support", released.deployment)
        for number in range(25):
            answer = httpx.post(
                f"{server.url}/endpoints/support/invocations",
                json={"input": [{"role": "user", "content": f"Question {number}: a refund?"}]},
                headers={"authorization": f"Bearer {key.regenerated['primary']}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            assert (
                answer.json()["output"][0]["content"][0]["text"] == "Refunds are paid within 5 working days."
            )
        # the agent's requests are counted (by the second, from the server's statistics), never sampled
        checked = wait_until(lambda: _checked(project), 30, "the check never saw the requests")
    assert checked.signals["requests"] == 25 and checked.signals["error_rate"] == 0.0
    assert checked.samples == 0 and "conversations" in checked.signals["drift_reference"]


def _checked(project: Path) -> Any:
    try:
        return loopline.monitor_check(project=project)
    except InsufficientEvidence:
        return None


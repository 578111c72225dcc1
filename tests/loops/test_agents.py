"""A repository whose training logs an MLflow agent (a ``ResponsesAgent`` logged from code): set up by
``init --existing``, registered, released through the smoke test of its input example, served and
monitored by its errors and latency."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

import loopline
from loopline.errors import InsufficientEvidence, ModelFailed
from tests.helpers import TRAINING_SCRIPTS, commit_all, edit_yaml, git, tree, wait_until
from tests.servers import Dashboard, Server, free_port

pytestmark = pytest.mark.slow


def agent_repository(path: Path, agent: str = "support_agent.py", training: str | None = None) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "--quiet")
    tree(
        path,
        {
            "agent.py": (TRAINING_SCRIPTS / agent).read_text(),
            "train.py": training or (TRAINING_SCRIPTS / "support_agent_train.py").read_text(),
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
        checked = wait_until(lambda: _checked(project, 25), 30, "the check never saw the 25 requests")
    assert checked.signals["requests"] == 25 and checked.signals["error_rate"] == 0.0
    assert checked.samples == 0 and "conversations" in checked.signals["drift_reference"]
    board = Dashboard(project)
    try:
        page = httpx.get(f"{board.url}/ui/endpoints", timeout=30).text
    finally:
        board.stop()
    assert "Monitoring: 25 requests, checked" in page  # as the command line says it
    assert "No feature drift measured: the model answers conversations" in page


def _checked(project: Path, requests: int) -> Any:
    """The monitoring check of prod's endpoint once the serving statistics hold ``requests`` (a server
    writes them once a second); None before."""
    try:
        checked = loopline.monitor_check(project=project)
    except InsufficientEvidence:
        return None
    return checked if checked.signals["requests"] == requests else None


class _LanguageModelApi(BaseHTTPRequestHandler):
    """A language model's API on 127.0.0.1: answers a question with a key, refuses one without."""

    asked: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        question = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["question"]
        known = self.headers.get("Authorization") == f"Bearer {KEY}"
        type(self).asked.append(question if known else "refused")
        body = json.dumps({"answer": f"You asked: {question}"}).encode()
        self.send_response(200 if known else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


KEY = "sk-test-0123456789"
SERVICE_TRAINING = """\
import mlflow

from agent import ServiceAgent

mlflow.set_experiment("support-agent")
with mlflow.start_run():
    answer = ServiceAgent().predict({"input": [{"role": "user", "content": "ping"}]})
    mlflow.log_metric("accuracy", float(answer.output[0].content[0]["text"] == "You asked: ping"))
    mlflow.pyfunc.log_model(
        name="agent",
        python_model="agent.py",
        code_paths=["agent.py"],
        input_example={"input": [{"role": "user", "content": "How do I get a refund?"}]},
    )
"""


def test_an_agent_calling_its_llm_s_api_is_checked_with_the_key_and_port_the_project_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), _LanguageModelApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    port = api.server_address[1]
    monkeypatch.setenv("SUPPORT_LLM_URL", f"http://127.0.0.1:{port}/v1/answer")
    monkeypatch.setenv("SUPPORT_LLM_KEY", KEY)
    project = agent_repository(tmp_path / "support", "service_agent.py", SERVICE_TRAINING)
    loopline.init_existing(project)
    loopline.up(project)
    commit_all(project, "Set up loopline")
    # model code gets no variable and no connection in the sandbox, unless the project names them
    with pytest.raises(ModelFailed, match=r"sandbox\.environment names and may connect to the ports"):
        loopline.inner_loop(project)
    edit_yaml(
        project / "loopline.yaml",
        sandbox={"environment": ["SUPPORT_LLM_URL", "SUPPORT_LLM_KEY"], "connect_ports": [port]},
    )
    commit_all(project, "Give the agent its API")
    _LanguageModelApi.asked.clear()
    registered = loopline.inner_loop(project)
    api.shutdown()
    assert registered.shared is not None
    assert "How do I get a refund?" in _LanguageModelApi.asked  # the check asked it, with the key

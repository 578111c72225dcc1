"""Chat models and agents: the requests MLflow's scoring server takes for them (a JSON object of
``messages``, ``prompt`` or ``input``, handed to the model as it came) answered as MLflow's server answers
them, refusals that name the field and never repeat the conversation, and an agent waiting on a slow service
holding up nothing else. Real servers on 127.0.0.1: loopline's and MLflow's own scoring app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopline
from tests.helpers import TRAINING_SCRIPTS, system_key, wait_until
from tests.servers import Server, serving_models
from tests.serving.test_mlflow_compat import GATE_METRICS, mlflow_server

pytestmark = pytest.mark.slow

SECRET = "my card number is 4111-1111"  # in each refused conversation: no answer may repeat it
QUESTION = {"input": [{"role": "user", "content": "How do I get a refund?"}]}


def save_models(folder: Path) -> dict[str, Path]:
    """A ResponsesAgent and a ChatModel logged from code, as MLflow's guides log them, and a table's model."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    models = {"agent": folder / "agent", "chat": folder / "chat", "table": folder / "table"}
    mlflow.pyfunc.save_model(
        models["agent"], python_model=str(TRAINING_SCRIPTS / "support_agent.py"), input_example=QUESTION
    )
    mlflow.pyfunc.save_model(
        models["chat"],
        python_model=str(TRAINING_SCRIPTS / "shout_chat.py"),
        input_example={"messages": [{"role": "user", "content": "hello"}]},
    )
    rows = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    fitted = LogisticRegression().fit(rows, [0, 0, 1, 1])
    mlflow.sklearn.save_model(
        fitted, models["table"], signature=infer_signature(rows, fitted.predict(rows)), input_example=rows
    )
    return models


@dataclass
class Served:
    url: str
    keys: dict[str, str]
    mlflow: dict[str, str]
    project: Path

    def post(self, endpoint: str, body: object, route: str = "invocations") -> httpx.Response:
        return httpx.post(
            f"{self.url}/endpoints/{endpoint}/{route}",
            json=body,
            headers={"authorization": f"Bearer {self.keys[endpoint]}"},
            timeout=90,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("llm")
    with pytest.MonkeyPatch.context() as environment:
        # MLflow's app (in this process) writes the agent's traces to the tracking store: one of its own
        environment.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/traces.db")
        yield from _served(root)


def _served(root: Path) -> Iterator[Served]:
    models = save_models(root / "models")
    # the inner loop's check of each model in the sandbox answers its input example, a conversation
    with serving_models(root, models, GATE_METRICS, strict={"strict": "agent"}) as (server, project):
        yield Served(
            server.url,
            {name: system_key(project, name, "dev") for name in (*models, "strict")},
            {name: mlflow_server(models[name]) for name in ("agent", "chat")},
            project,
        )


ANSWERED = [
    ("agent", {"input": [{"role": "user", "content": "I forgot my password"}]}),
    ("agent", {**QUESTION, "custom_inputs": {"plan": "pro"}, "context": {"conversation_id": "c-1"}}),
    (
        "agent",
        {
            "input": [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "How can I help?"},
                {"role": "user", "content": "what are your hours?"},
            ]
        },
    ),
    ("chat", {"messages": [{"role": "user", "content": "hello there"}]}),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "max_tokens": 10}),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "a_field_it_ignores": 3}),
]


@pytest.mark.parametrize(("model", "body"), ANSWERED)
def test_a_chat_model_and_an_agent_answer_what_mlflow_s_server_answers(
    served: Served, model: str, body: dict[str, Any]
) -> None:
    ours = served.post(model, body)
    theirs = httpx.post(f"{served.mlflow[model]}/invocations", json=body, timeout=90)
    assert (ours.status_code, theirs.status_code) == (200, 200), ours.text
    assert ours.json() == theirs.json()  # the model's own response, with no "predictions" around it
    assert ours.headers["loopline-model-version"] == "1"


REFUSED = [
    # an agent's request is its `input`; a chat model's, its `messages`
    ("agent", {"messages": [{"role": "user", "content": SECRET}]}, "BAD_INPUT", "with 'input'"),
    ("chat", {"input": [{"role": "user", "content": SECRET}]}, "BAD_INPUT", "with 'messages'"),
    ("agent", {"input": SECRET}, "WRONG_TYPE", "field 'input' must be a list"),
    ("chat", {"messages": SECRET}, "WRONG_TYPE", "field 'messages' must be a list"),
    ("agent", {"input": [{"role": "user"}], "user": SECRET}, "SCHEMA_MISMATCH", "input.0.content: Field"),
    (
        "agent",
        {"input": [{"role": "user", "content": SECRET}], "temperature": SECRET},
        "WRONG_TYPE",
        "number",
    ),
    ("table", {"messages": [{"role": "user", "content": SECRET}]}, "BAD_INPUT", "this model takes a table"),
    ("strict", {**QUESTION, "extra": SECRET}, "BAD_INPUT", "unknown field 'extra'"),
]


@pytest.mark.parametrize(("model", "body", "code", "said"), REFUSED)
def test_a_request_the_model_does_not_take_is_refused_naming_the_field_not_its_content(
    served: Served, model: str, body: dict[str, Any], code: str, said: str
) -> None:
    answer = served.post(model, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == code
    assert said in answer.json()["message"]
    assert "4111" not in answer.text  # MLflow's server repeats the whole request in its message


def test_azure_ml_s_route_points_a_conversation_to_mlflow_s(served: Served) -> None:
    answer = served.post("agent", QUESTION, route="score")
    assert answer.status_code == 400
    assert (
        "'input' is MLflow's format, which the endpoint's /invocations path takes" in answer.json()["message"]
    )


def test_an_agent_waiting_on_a_slow_service_holds_up_no_other_request(served: Served, tmp_path: Path) -> None:
    released = tmp_path / "the service answered"
    waiting: list[httpx.Response] = []
    question = {"input": [{"role": "user", "content": f"wait for {released}"}]}
    slow = [threading.Thread(target=lambda: waiting.append(served.post("agent", question))) for _ in range(3)]
    for thread in slow:
        thread.start()
    asked = tmp_path / "the service answered.asked"
    wait_until(lambda: asked.is_file() and len(asked.read_text().splitlines()) == 3, 30, "not all asked")
    # while three conversations wait, the same agent, another model and the server all answer
    assert served.post("agent", QUESTION).status_code == 200
    assert served.post(
        "table", {"dataframe_split": {"columns": ["a", "b"], "data": [[3.0, 0.0]]}}
    ).json() == {"predictions": [1]}
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200
    assert not waiting
    released.touch()
    for thread in slow:
        thread.join(90)
    assert [answer.status_code for answer in waiting] == [200, 200, 200]
    assert json.loads(waiting[0].text)["output"][0]["content"][0]["text"] == "Let me pass you to a human."


def test_a_conversation_is_mirrored_to_a_deployment_taking_no_traffic(served: Served) -> None:
    loopline.create_deployment("chat", "shadow", model="chat", version=1, project=served.project)
    loopline.set_traffic("chat", None, mirror={"shadow": 50}, project=served.project)
    ready = f"{served.url}/endpoints/chat/deployments/shadow/ready"
    wait_until(lambda: httpx.get(ready, timeout=5).status_code == 200, 60, "the shadow never came up")
    wait_until(lambda: _mirrored(served) is not None, 30, "the server never took the mirror")
    for _ in range(40):  # half of them are copied, at random: all 40 missed it once in 10^12 runs
        answer = served.post("chat", {"messages": [{"role": "user", "content": "copy me"}]})
        assert answer.json()["choices"][0]["message"]["content"] == "COPY ME"  # the live deployment's
    wait_until(lambda: (_mirrored(served) or 0) >= 1, 30, "no conversation reached the mirror")
    assert _errors_mirrored(served) == 0


def _errors_mirrored(served: Served) -> float:
    wanted = 'loopline_mirrored_requests_total{deployment="shadow",endpoint="chat",outcome="error"}'
    lines = httpx.get(f"{served.url}/metrics", timeout=5).text.splitlines()
    return next((float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(wanted)), 0.0)


def _mirrored(served: Served) -> float | None:
    """Conversations the chat endpoint's shadow answered as a mirror (None until the server mirrors)."""
    described = httpx.get(
        f"{served.url}/endpoints/chat", headers={"authorization": f"Bearer {served.keys['chat']}"}, timeout=5
    ).json()
    if not described["mirror"]:
        return None
    wanted = 'loopline_mirrored_requests_total{deployment="shadow",endpoint="chat",outcome="ok"}'
    for line in httpx.get(f"{served.url}/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_agent_that_does_not_answer_in_time_is_a_504_and_the_server_goes_on(
    served: Served, tmp_path: Path
) -> None:
    never = tmp_path / "a service that never answers"
    env = {"LOOPLINE_SERVING__MODEL_TIMEOUT_SECONDS": "1"}
    with Server(served.project, workspace="dev", env=env) as server:
        server.wait_for("agent", "only")
        key = {"authorization": f"Bearer {served.keys['agent']}"}
        url = f"{server.url}/endpoints/agent/invocations"
        question = {"input": [{"role": "user", "content": f"wait for {never}"}]}
        late = httpx.post(url, json=question, headers=key, timeout=30)
        assert late.status_code == 504, late.text
        assert late.json() == {
            "error_code": "MODEL_TIMEOUT",
            "message": "deployment 'only' did not answer within 1 s (serving.model_timeout_seconds in "
            "loopline.yaml)",
        }
        assert httpx.post(url, json=QUESTION, headers=key, timeout=30).status_code == 200
        never.touch()  # the agent's call ends, on its thread

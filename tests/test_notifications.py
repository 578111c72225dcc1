"""Webhooks: a real receiver on 127.0.0.1 checks what loopline sends, in order, signed, retried, kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import loopline
from loopline.config import EVENT_KINDS, load_config
from loopline.errors import ConfigError
from loopline.events import EVENT_TYPES
from tests.helpers import cli, commit_all, wait_until

SECRET = "a-signing-key-of-some-length"


@dataclass
class Receiver:
    """A webhook receiver: what it was sent, and how it answers each path."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    """Per path, how many requests are answered 503 before the rest are taken (-1: every one)."""
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)

    def taken(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["status"] == 200]

    def wait_for(self, path: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.taken(path)) >= count, timeout, f"{path} never took {count} events", 0.05)
        return self.taken(path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            if self.path == "/held":
                state.held.set()
                state.hold.wait(60)
            left = state.failures_left.get(self.path, 0)
            status = 503 if left else 200
            if left > 0:
                state.failures_left[self.path] = left - 1
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
            )
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.hold.set()
    server.shutdown()


def _configure(project: Path, **notifications: Any) -> None:
    path = project / "loopline.yaml"
    data = yaml.safe_load(path.read_text())
    data["notifications"] = notifications
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _verified(request: dict[str, Any]) -> dict[str, Any]:
    """The body of a request whose MLflow signature holds (checked as a receiver written for MLflow does)."""
    headers = request["headers"]
    signed = f"{headers['X-MLflow-Delivery-Id']}.{headers['X-MLflow-Timestamp']}.{request['body']}"
    expected = base64.b64encode(hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(headers["X-MLflow-Signature"], f"v1,{expected}")
    return dict(json.loads(request["body"]))


def _add_users(project: Path, *names: str) -> None:
    for name in names:
        loopline.user_add(name, project=project)


def test_every_kind_of_audit_event_can_be_named_in_a_webhook() -> None:
    assert set(EVENT_KINDS) == set(EVENT_TYPES) - {"event"}


def test_a_trained_commit_reaches_a_receiver_written_for_mlflow_signed_and_in_order(
    new_project: Callable[..., Path], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    _configure(project, webhooks={"registry": {"url": f"{receiver.url}/mlflow", "secret_env": "HOOK_SECRET"}})
    commit_all(project, "Tell the registry's receiver")

    result = loopline.inner_loop(project)

    # The gate, the version in dev, and its copy in the shared registry: three events, in that order.
    bodies = [_verified(r) for r in receiver.wait_for("/mlflow", 3)]
    assert [b["loopline"]["kind"] for b in bodies] == ["gate-evaluated", "registered", "shared"]
    seqs = [b["loopline"]["seq"] for b in bodies]
    assert seqs == sorted(seqs)
    registered, shared = bodies[1], bodies[2]
    assert (registered["entity"], registered["action"]) == ("model_version", "created")
    # The keys of MLflow's own model_version.created payload (mlflow.webhooks.types), with its types.
    assert set(registered["data"]) == {"name", "version", "source", "run_id", "tags", "description"}
    assert registered["data"]["name"] == result.dev.name
    assert registered["data"]["version"] == str(result.dev.version)
    assert registered["data"]["tags"]["git_commit"] == result.git_commit
    assert shared["data"]["name"] == result.shared.name
    assert shared["data"]["version"] == str(result.shared.version)
    assert bodies[0]["entity"] == "loopline" and bodies[0]["action"] == "gate-evaluated"
    # The delivery id is the event's: a receiver can tell an event sent again from a new one.
    ids = [r["headers"]["X-MLflow-Delivery-Id"] for r in receiver.taken("/mlflow")]
    assert ids == [b["loopline"]["id"] for b in bodies]


def test_a_failing_receiver_gets_each_event_again_until_it_takes_it_in_order(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    receiver.failures_left["/flaky"] = 3
    _configure(
        project,
        webhooks={"flaky": {"url": f"{receiver.url}/flaky", "events": ["user-added"]}},
        retry_seconds=0.1,
    )

    _add_users(project, "ann", "bob", "cy")

    taken = receiver.wait_for("/flaky", 3)
    assert [json.loads(r["body"])["loopline"]["target"] for r in taken] == ["ann", "bob", "cy"]
    # The first event was refused three times (the same delivery id each time), then taken.
    tries = [r for r in receiver.requests if r["path"] == "/flaky"]
    assert [r["status"] for r in tries[:4]] == [503, 503, 503, 200]
    assert len({r["headers"]["X-MLflow-Delivery-Id"] for r in tries[:4]}) == 1
    assert len(tries) == 6 and loopline.notifications_failed(project=project) == []


def test_an_event_refused_every_time_is_kept_as_failed_and_sent_again_by_hand(
    new_project: Callable[..., Path], receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    receiver.failures_left["/down"] = -1
    _configure(
        project,
        webhooks={
            "down": {"url": f"{receiver.url}/down", "events": ["user-added"]},
            "up": {"url": f"{receiver.url}/up", "events": ["user-added"]},
        },
        attempts=2,
        retry_seconds=0.1,
    )

    _add_users(project, "ann", "bob")

    # The webhook that answers goes on regardless of the one that does not.
    assert len(receiver.wait_for("/up", 2)) == 2
    wait_until(
        lambda: len(loopline.notifications_failed(project=project)) >= 2, 60, "two failed deliveries", 0.05
    )
    listed = cli(capsys, "notifications", "failed", "--project", str(project), "--json")
    assert listed.exit_code == 1
    failed = listed.json()["failed"]
    assert [(f["webhook"], f["kind"], f["attempts"]) for f in failed] == [("down", "user-added", 2)] * 2
    assert "HTTP 503" in failed[0]["error"]

    receiver.failures_left["/down"] = 0
    retried = cli(capsys, "notifications", "failed", "--retry", "--project", str(project))
    assert retried.exit_code == 0, retried.stderr
    assert "every event was delivered" in retried.stdout
    assert [json.loads(r["body"])["loopline"]["target"] for r in receiver.taken("/down")] == ["ann", "bob"]
    assert loopline.notifications_failed(project=project) == []


def test_a_receiver_that_hangs_never_holds_up_the_change_that_caused_the_event(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    hook = {"url": f"{receiver.url}/held", "events": ["user-added"]}
    _configure(project, webhooks={"held": hook}, timeout_seconds=60)

    _add_users(project, "ann")
    assert receiver.held.wait(60), "the event was not sent"
    # The receiver holds the first request open; changes go on, and their events queue behind it.
    _add_users(project, "bob")
    assert [u.name for u in loopline.user_list(project=project)] == ["ann", "bob"]
    assert receiver.requests == []

    receiver.hold.set()
    assert [json.loads(r["body"])["loopline"]["target"] for r in receiver.wait_for("/held", 2)] == [
        "ann",
        "bob",
    ]


def test_slack_and_teams_receivers_get_a_message_they_show(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    hooks = {
        "slack": {"url": f"{receiver.url}/slack", "format": "slack", "events": ["user-added"]},
        "teams": {"url": f"{receiver.url}/teams", "format": "teams", "events": ["user-added"]},
    }
    _configure(project, webhooks=hooks)

    _add_users(project, "ann")

    slack = json.loads(receiver.wait_for("/slack", 1)[0]["body"])
    assert set(slack) == {"text"} and slack["text"].startswith("proj: user added by ")
    teams = json.loads(receiver.wait_for("/teams", 1)[0]["body"])
    assert teams["type"] == "message"
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["inlines"][0] == {"type": "TextRun", "text": slack["text"]}


def test_a_reason_is_shown_as_written_never_as_a_mention_or_a_link_dressed_as_another(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    hooks = {
        "slack": {"url": f"{receiver.url}/slack", "format": "slack", "events": ["endpoint-retired"]},
        "teams": {"url": f"{receiver.url}/teams", "format": "teams", "events": ["endpoint-retired"]},
    }
    _configure(project, webhooks=hooks)
    reason = "<!channel> approve at <https://phish.example|the release page> & [here](https://phish.example)"
    loopline.create_endpoint("ep", "dev", project=project)
    loopline.retire_endpoint("ep", reason=reason, workspace="dev", project=project)

    slack = json.loads(receiver.wait_for("/slack", 1)[0]["body"])["text"]
    assert "<" not in slack and ">" not in slack  # Slack's markup, none of it
    assert slack.endswith(
        ": &lt;!channel&gt; approve at &lt;https://phish.example|the release page&gt; &amp; "
        "[here](https://phish.example)"
    )
    card = json.loads(receiver.wait_for("/teams", 1)[0]["body"])["attachments"][0]["content"]
    assert [block["type"] for block in card["body"]] == ["RichTextBlock"]  # no Markdown, unlike a TextBlock
    assert card["body"][0]["inlines"][0]["text"].endswith(f": {reason}")


def test_a_webhook_added_later_is_not_sent_the_past(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    _add_users(project, "ann")
    _configure(project, webhooks={"late": {"url": f"{receiver.url}/late", "events": ["user-added"]}})

    _add_users(project, "bob")

    assert [json.loads(r["body"])["loopline"]["target"] for r in receiver.wait_for("/late", 1)] == ["bob"]
    sent = loopline.notifications_deliver(project=project)
    assert not sent.delivered and len(receiver.taken("/late")) == 1


def test_a_missing_signing_key_keeps_the_event_as_failed_naming_the_variable(
    new_project: Callable[..., Path], receiver: Receiver
) -> None:
    project = new_project("simple")
    hook = {"url": f"{receiver.url}/signed", "secret_env": "NOT_SET_HERE", "events": ["user-added"]}
    _configure(project, webhooks={"signed": hook}, attempts=1)
    _add_users(project, "ann")
    failed = wait_until(lambda: loopline.notifications_failed(project=project), 60, "a failed delivery", 0.05)
    assert "NOT_SET_HERE" in failed[0].error and receiver.requests == []


@pytest.mark.parametrize(
    ("webhook", "expected"),
    [
        ({"url": "ftp://x/y"}, "'notifications.webhooks.team.url': give an http:// or https:// URL"),
        ({"url": "http://x", "events": ["releasd"]}, "'releasd' is not a kind of event"),
        ({"secret_env": "S"}, "give the webhook either url or url_env"),
        ({"url": "http://x", "secret": "inline"}, "secret"),
    ],
)
def test_a_wrong_webhook_is_a_configuration_error_naming_it(
    new_project: Callable[..., Path], webhook: dict[str, Any], expected: str
) -> None:
    project = new_project("simple", commit=False, up=False)
    _configure(project, webhooks={"team": webhook})
    with pytest.raises(ConfigError, match="notifications") as raised:
        load_config(project)
    assert expected in raised.value.message

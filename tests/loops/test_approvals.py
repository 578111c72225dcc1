"""Approvals of releases to prod: four eyes, roles, denials, expiry, the audit log, GitHub environments."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import loopline
from loopline.errors import ApprovalNeeded, Forbidden, Refused, UsageError
from loopline.instance import Instance
from loopline.state.schema import approvals
from tests.conftest import ProjectFactory
from tests.helpers import cli, edit_yaml, git

pytestmark = pytest.mark.slow


def _team(project: Path) -> None:
    """alice and bob release; carol only reads prod; approvals: one, by a releaser."""
    edit_yaml(
        project / "loopline.yaml", release={"approvals": {"required": 1, "approvers": ["role:releaser"]}}
    )
    for user, role in (("alice", "releaser"), ("bob", "releaser"), ("carol", "reader")):
        loopline.user_add(user, project=project)
        loopline.user_grant(user, role, "prod", project=project)


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    monkeypatch.setenv("LOOPLINE_USER", user)


def _live_commit(project: Path) -> str | None:
    try:
        info = loopline.get_endpoint("proj", workspace="prod", project=project)
    except Refused:
        return None
    return next((d.git_commit for d in info.deployments if d.traffic == 100), None)


def test_a_release_waits_for_an_approver_other_than_the_one_who_asked(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    head = git(project, "rev-parse", "HEAD")
    _team(project)

    _as(monkeypatch, "alice")
    with pytest.raises(
        ApprovalNeeded,
        match=r"release of proj-classifier v1 \(\w+\) to prod needs 1 approval\(s\) \(0 given\)",
    ) as refused:
        loopline.outer_loop_prod(project)
    assert f"loopline approve --commit {head[:7]}" in refused.value.message
    assert _live_commit(project) is None
    asked = loopline.history(project, kind="approval-requested")
    assert [(r.event.actor, r.event.git_commit) for r in asked] == [("alice", head)]

    # The one who asked cannot approve; a reader of prod is no approver.
    with pytest.raises(
        Refused,
        match=r"alice asked for the release of proj-classifier v1 \(\w+\) to prod, so another approver",
    ):
        loopline.approve(reason="looks fine", project=project)
    _as(monkeypatch, "carol")
    with pytest.raises(
        Forbidden, match=r"carol is not an approver of releases to prod \(approvers: role:releaser\)"
    ):
        loopline.approve(reason="looks fine", project=project)
    with pytest.raises(UsageError, match="--reason"):
        loopline.approve(reason=" ", project=project)

    _as(monkeypatch, "bob")
    shown = cli(capsys, "approve", "--reason", "metrics hold up", "--project", str(project), "--json")
    assert shown.exit_code == 0, shown.stderr
    approval = shown.json()
    assert (approval["approver"], approval["requested_by"], approval["git_commit"]) == ("bob", "alice", head)
    assert approval["report_digest"]  # the gate it saw
    state = cli(capsys, "approvals", "--project", str(project))
    assert "1 of 1 approval(s), asked by alice" in state.stdout and "approved by bob" in state.stdout

    # An approval by the releaser does not count for their own release: bob's release still needs another.
    with pytest.raises(ApprovalNeeded, match=r"\(0 given\)"):
        loopline.outer_loop_prod(project)
    _as(monkeypatch, "alice")
    result = loopline.outer_loop_prod(project)
    assert result.changed and _live_commit(project) == head
    decided = loopline.history(project, kind="approval-decided")
    assert [(r.event.actor, r.event.outcome, r.event.reason) for r in decided] == [
        ("bob", "ok", "metrics hold up")
    ]
    refusals = [r.event.reason for r in loopline.history(project, kind="refused")]
    assert any("carol is not an approver" in (reason or "") for reason in refusals)


def test_a_denial_stands_until_its_approver_changes_their_mind_and_approvals_expire(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = trained_project("simple")
    _team(project)
    _as(monkeypatch, "bob")
    loopline.approve(reason="latency is too high", deny=True, project=project)
    _as(monkeypatch, "alice")
    with pytest.raises(
        ApprovalNeeded,
        match=r"bob denied the release of proj-classifier v1 \(\w+\) to prod: latency is too high",
    ):
        loopline.outer_loop_prod(project)

    _as(monkeypatch, "bob")
    loopline.approve(reason="fixed upstream", project=project)
    state = loopline.approvals(project=project)
    assert [(a.approver, a.decision) for a in state.standing] == [("bob", "approved")]

    # Once expired, an approval no longer counts.
    with Instance.open(project).db.write() as connection:
        connection.execute(update(approvals).values(expires_at=approvals.c.created_at))
    assert loopline.approvals(project=project).standing == []
    _as(monkeypatch, "alice")
    with pytest.raises(ApprovalNeeded, match=r"\(0 given\)"):
        loopline.outer_loop_prod(project)


class _GitHub:
    """GitHub's REST API for one workflow run's deployment reviews (a stand-in: GitHub's own servers
    cannot be reached from here)."""

    def __init__(self, reviews: list[dict[str, Any]]) -> None:
        self.reviews = reviews
        self.seen: list[dict[str, str]] = []
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                github.seen.append(
                    {"path": self.path, "authorization": self.headers.get("Authorization", "")}
                )
                body = json.dumps(github.reviews).encode()
                self.send_response(
                    200 if self.path == "/repos/acme/churn/actions/runs/777/approvals" else 404
                )
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[_GitHub]:
    server = _GitHub(
        [
            {"state": "approved", "comment": "ship it", "environments": [{"name": "production"}],
             "user": {"login": "octo-lead"}},
            {"state": "approved", "comment": "", "environments": [{"name": "staging"}],
             "user": {"login": "other"}},
        ]
    )  # fmt: skip
    for name, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "777", "GITHUB_REPOSITORY": "acme/churn",
        "GITHUB_TOKEN": "ghs_test", "GITHUB_API_URL": server.url, "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_ACTOR": "octo-dev",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    yield server
    server.server.shutdown()


def test_an_approved_protected_environment_in_github_actions_stands_for_an_approval(
    trained_project: ProjectFactory, github: _GitHub
) -> None:
    project = trained_project("simple")
    edit_yaml(
        project / "loopline.yaml",
        release={
            "approvals": {"required": 1, "approvers": ["octo-lead"], "github_environment": "production"}
        },
    )

    result = loopline.outer_loop_prod(project)

    assert result.changed
    assert github.seen == [
        {"path": "/repos/acme/churn/actions/runs/777/approvals", "authorization": "Bearer ghs_test"}
    ]
    decided = loopline.history(project, kind="approval-decided")[-1].event
    assert (decided.actor, decided.reason) == ("octo-lead", "ship it")
    assert decided.details["run_url"] == "https://github.example/acme/churn/actions/runs/777"
    assert decided.details["source"] == "github-environment"
    # A review of another environment, or none, does not count.
    github.reviews = [r for r in github.reviews if r["user"]["login"] == "other"]
    edit_yaml(
        project / "loopline.yaml",
        release={
            "approvals": {"required": 2, "approvers": ["octo-lead"], "github_environment": "production"}
        },
    )
    with pytest.raises(ApprovalNeeded, match=r"\(1 given\)"):
        loopline.outer_loop_prod(project)


@pytest.mark.parametrize(
    ("approvers", "may"),
    [
        (["role:releaser"], {"rita", "ada"}),
        (["role:admin"], {"ada"}),
        (["dora"], {"dora"}),
    ],
)
def test_who_may_approve_follows_the_approvers_list_and_the_roles_on_prod(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, approvers: list[str], may: set[str]
) -> None:
    project = trained_project("simple")
    edit_yaml(project / "loopline.yaml", release={"approvals": {"required": 1, "approvers": approvers}})
    roles = {"rudi": "reader", "dora": "developer", "rita": "releaser", "ada": "admin"}
    for user, role in roles.items():
        loopline.user_add(user, project=project)
        loopline.user_grant(user, role, "prod", project=project)
    allowed = set()
    for user in roles:
        monkeypatch.setenv("LOOPLINE_USER", user)
        try:
            loopline.approve(reason=f"{user} looked", project=project)
        except Forbidden:
            continue
        allowed.add(user)
    assert allowed == may
    refused = {
        r.event.actor for r in loopline.history(project, kind="refused") if r.event.outcome == "forbidden"
    }
    assert refused == set(roles) - may

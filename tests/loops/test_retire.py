"""Retiring a served prod endpoint: its final report is archived first, then it, its deployments and keys
are gone, and the serving process stops answering it."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

import loopline
from loopline.errors import ApprovalNeeded, NotFound, Refused, UsageError
from loopline.instance import Instance
from loopline.serving.stats import window_stats
from tests.helpers import cli, edit_yaml, heldout_request, wait_until
from tests.servers import Server, free_port

pytestmark = pytest.mark.slow


def test_a_retired_endpoint_leaves_its_final_report_in_the_registry_and_nothing_else(
    a_live_b_registered: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, a, b = a_live_b_registered
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    with Server(project, workspace="prod", port=port) as server:
        loopline.outer_loop_prod(project)  # B takes the traffic, A stays loaded
        # A client's key: the retirement's evidence is of the endpoint's clients, not of loopline's checks.
        key = loopline.endpoint_keys("proj", regenerate="secondary", project=project).regenerated["secondary"]
        url = f"{server.url}/endpoints/proj/score"
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        # The server follows the routing table within a second: until then A may still answer.
        commit = "loopline-git-commit"
        wait_until(
            lambda: (
                httpx.post(url, content=heldout_request(project, 2), headers=headers).headers[commit] == b
            ),
            10,
            "the server never followed the release to B",
        )
        for _ in range(5):
            answer = httpx.post(url, content=heldout_request(project, 2), headers=headers)
            assert answer.status_code == 200 and answer.headers[commit] == b
        # The server writes its statistics about once a second (later on a busy machine): wait for them.
        serving = next(
            d.name for d in loopline.get_endpoint("proj", project=project).deployments if d.git_commit == b
        )
        db = Instance.open(project).db
        wait_until(
            lambda: window_stats(db, "prod", "proj", serving, time.time() - 600).requests >= 5,
            30,
            "the server's statistics never showed the 5 requests",
            every=0.2,
        )

        with pytest.raises(UsageError, match="--reason"):
            loopline.retire_endpoint("proj", reason=" ", project=project)
        done = cli(
            capsys,
            "endpoint",
            "retire",
            "proj",
            "--reason",
            "replaced by the batch scores",
            "-C",
            str(project),
            "--json",
        )
        assert done.exit_code == 0, done.stderr
        retired = done.json()

        wait_until(  # the server follows the routing table within a second
            lambda: httpx.post(url, content=heldout_request(project, 2), headers=headers).status_code == 404,
            10,
            "the retired endpoint still answers",
        )

    evidence = retired["evidence"]
    deployments = {d["git_commit"]: d for d in evidence["deployments"]}
    assert set(deployments) == {a, b} and deployments[b]["traffic"] == 100
    assert evidence["traffic"][deployments[b]["name"]]["requests"] >= 5
    assert [r["git_commit"] for r in evidence["releases"]] == [a, b]
    assert (
        evidence["keys"] == ["primary", "secondary"] and evidence["reason"] == "replaced by the batch scores"
    )
    folder = Path(retired["evidence_uri"].removeprefix("file://"))
    body = (folder / "evidence.json").read_text()
    assert "sha256:" + hashlib.sha256(body.encode()).hexdigest() == retired["evidence_digest"]
    assert json.loads(body) == evidence
    assert "retired" in (folder / "evidence.md").read_text()

    with pytest.raises(NotFound):
        loopline.get_endpoint("proj", workspace="prod", project=project)
    with pytest.raises(NotFound):
        loopline.endpoint_keys("proj", workspace="prod", project=project)
    event = loopline.history(project, kind="endpoint-retired")[-1].event
    assert (event.target, event.workspace, event.reason) == ("proj", "prod", "replaced by the batch scores")
    assert event.details["evidence_digest"] == retired["evidence_digest"]
    assert event.details["evidence_uri"] == retired["evidence_uri"]


def test_where_releases_need_approval_so_does_retiring_prods_endpoint(
    a_live_b_registered: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, _, _ = a_live_b_registered
    edit_yaml(project / "loopline.yaml", release={"approvals": {"required": 1}})
    for user in ("alice", "bob"):
        loopline.user_add(user, project=project)
        loopline.user_grant(user, "releaser", "prod", project=project)

    monkeypatch.setenv("LOOPLINE_USER", "alice")
    with pytest.raises(ApprovalNeeded, match=r"`loopline approve --retire proj --reason TEXT`"):
        loopline.retire_endpoint("proj", reason="moved to batch", project=project)
    assert loopline.get_endpoint("proj", workspace="prod", project=project).deployments
    [waiting] = loopline.approval_requests(project=project)
    assert (waiting.model, waiting.requested_by, waiting.status) == ("endpoint:proj", "alice", "waiting")
    with pytest.raises(Refused, match="alice asked for the retirement of prod's endpoint proj"):
        loopline.approve(retire="proj", reason="fine", project=project)

    monkeypatch.setenv("LOOPLINE_USER", "bob")  # as the refusal told: `loopline approve --retire proj ...`
    approved = cli(capsys, "approve", "--retire", "proj", "--reason", "no caller left", "-C", str(project))
    assert approved.exit_code == 0, approved
    assert "approved retiring prod's endpoint proj as bob" in " ".join(approved.stdout.split()), approved
    state = cli(capsys, "approvals", "--retire", "proj", "--json", "-C", str(project)).json()
    assert (state["status"], state["model"]) == ("approved", "endpoint:proj"), state
    assert [a["approver"] for a in state["standing"]] == ["bob"], state
    monkeypatch.setenv("LOOPLINE_USER", "alice")
    retired = loopline.retire_endpoint("proj", reason="moved to batch", project=project)
    assert retired.workspace == "prod"
    decided = loopline.history(project, kind="approval-decided")[-1].event
    assert (decided.actor, decided.model, decided.reason) == ("bob", "endpoint:proj", "no caller left")

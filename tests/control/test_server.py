"""The control plane over real HTTP: every route's role rule, tokens, rate limits, secrets, remote SDK."""

from __future__ import annotations

import itertools
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

import loopline
from loopline.errors import Forbidden, IntegrityViolation, StoreUnavailable, Unauthenticated, UsageError
from tests.conftest import ProjectFactory
from tests.control.team import GRANTS, PROD, Team, start_team
from tests.helpers import (
    Steps,
    cli_process,
    commit_all,
    edit_yaml,
    git,
    kill_sweep_in_its_second_trial,
    mlflow_client,
)
from tests.loops.test_experiments import _GitHub
from tests.servers import ConnectionCounter
from tests.test_inputs import trained_on

pytestmark = pytest.mark.slow

EVERYONE = frozenset(GRANTS)
READ_PROD = EVERYONE - {"dev"}
READ_TEST = EVERYONE - {"dev"}
DEV_CHANGE = frozenset({"dev", "ada"})
TEST_CHANGE = frozenset({"tess", "ada"})
PROD_CHANGE = frozenset({"paul", "ada"})
ADMIN = frozenset({"ada"})
NO_UPLOAD = "0" * 32
_names = itertools.count()


def _fresh(prefix: str) -> Any:
    return lambda: f"{prefix}-{next(_names)}"


IDENTITY = {"commit": "a" * 40, "branch": "main", "dirty_files": [], "diff_digest": None}
# (route, body, who may call it). Bodies reach the role check; what happens after it (done, 404, 409,
# 422, 503) does not matter here: only whether the answer is 403.
CASES: list[tuple[str, Any, frozenset[str]]] = [
    ("status", {}, EVERYONE),
    ("history", {"limit": 5}, EVERYONE),
    ("compare", {"last": 5}, EVERYONE),
    ("audit_verify", {}, EVERYONE),
    ("audit_checkpoint", {}, DEV_CHANGE),
    # The test workspace's finding, as its events in the history are.
    ("validation_report", {"commit": "abcdef1"}, READ_TEST),
    ("workflow_enabled", {"name": "inner-loop"}, EVERYONE),
    ("workflow_list", {}, EVERYONE),
    ("list_endpoints", {}, EVERYONE),
    ("list_data", {}, EVERYONE),
    ("get_data", {"name": "nothing"}, EVERYONE),
    ("list_batch_endpoints", {}, EVERYONE),
    ("batch_jobs", {}, EVERYONE),
    # A job that does not exist is guarded as prod's, so 403 or 404 tells nothing about jobs.
    ("batch_job", {"job_id": "nothing"}, READ_PROD),
    ("get_endpoint", {"name": "dev-ep"}, EVERYONE),
    ("get_endpoint", {"name": PROD}, READ_PROD),
    # One that does not exist: guarded as the workspace the call names (whoever reads it may list its
    # endpoints), else as prod's, so 403 or 404 tells nothing about endpoints one may not read.
    ("get_endpoint", {"name": "nothing", "workspace": "dev"}, EVERYONE),
    ("get_endpoint", {"name": "nothing"}, READ_PROD),
    ("get_endpoint", {"name": "nothing", "workspace": "elsewhere"}, READ_PROD),
    ("set_traffic", {"name": "nothing", "traffic": {}, "workspace": "dev"}, DEV_CHANGE),
    ("get_batch_endpoint", {"name": "nothing", "workspace": "dev"}, EVERYONE),
    ("releases", {"endpoint": PROD}, READ_PROD),
    ("invoke_endpoint", {"name": PROD, "payload": {"inputs": [[1.0]]}, "timeout": 2}, READ_PROD),
    ("monitor_check", {"endpoint": "dev-ep"}, EVERYONE),
    ("latest_check", {"endpoint": PROD}, READ_PROD),
    ("endpoint_metrics", {"name": "dev-ep", "minutes": 5}, EVERYONE),
    ("get_batch_endpoint", {"name": "dev-batch"}, EVERYONE),
    ("policy_evaluate", {"endpoint": PROD}, READ_PROD),
    ("policy_evaluate", {"endpoint": PROD, "act": True}, PROD_CHANGE),
    ("endpoint_keys", {"name": PROD}, READ_PROD),
    ("endpoint_keys", {"name": PROD, "regenerate": "secondary"}, PROD_CHANGE),
    ("endpoint_keys", {"name": "dev-ep", "regenerate": "secondary"}, DEV_CHANGE),
    ("uploads", b"not a tarball", DEV_CHANGE),
    (
        "inner_loop",
        {"upload": NO_UPLOAD, "identity": IDENTITY, "run": {"metrics": {"accuracy": 1.0}}},
        DEV_CHANGE,
    ),
    ("register_data", {"name": "heldout", "path": "inbox://nothing.csv"}, DEV_CHANGE),
    (
        "upload_data",
        {"upload": NO_UPLOAD, "name": "rows", "digest": f"sha256:{'0' * 64}", "single": True},
        DEV_CHANGE,
    ),
    # The bytes of the team's data: for those who train on them (a reader sees the manifest only).
    ("data_file", {"name": "nothing", "version": 1, "path": "rows.csv"}, DEV_CHANGE),
    ("create_endpoint", lambda: {"name": _fresh("d")(), "workspace": "dev"}, DEV_CHANGE),
    ("create_endpoint", lambda: {"name": _fresh("p")(), "workspace": "prod"}, PROD_CHANGE),
    ("create_endpoint", lambda: {"name": _fresh("t")(), "workspace": "test"}, TEST_CHANGE),
    ("update_endpoint", {"name": "dev-ep", "strict": True}, DEV_CHANGE),
    ("update_endpoint", {"name": PROD, "workspace": "prod", "strict": False}, PROD_CHANGE),
    ("delete_endpoint", {"name": "dev-ep"}, DEV_CHANGE),
    ("delete_endpoint", {"name": PROD}, PROD_CHANGE),
    ("retire_endpoint", {"name": "dev-ep", "reason": "unused"}, DEV_CHANGE),
    ("retire_endpoint", {"name": PROD, "reason": "unused"}, PROD_CHANGE),
    ("set_traffic", {"name": "dev-ep", "traffic": {}}, DEV_CHANGE),
    ("set_traffic", {"name": PROD, "traffic": {}}, PROD_CHANGE),
    ("create_deployment", {"endpoint": PROD, "name": "green", "version": 99}, PROD_CHANGE),
    ("create_deployment", {"endpoint": "dev-ep", "name": "green", "version": 99}, DEV_CHANGE),
    ("delete_deployment", {"endpoint": "dev-ep", "name": "nothing"}, DEV_CHANGE),
    ("create_batch_endpoint", lambda: {"name": _fresh("b")(), "workspace": "dev"}, DEV_CHANGE),
    ("create_batch_deployment", {"endpoint": "dev-batch", "name": "b1", "version": 99}, DEV_CHANGE),
    ("batch_invoke", {"endpoint": "dev-batch", "data": "nothing"}, DEV_CHANGE),
    ("batch_promote", {"endpoint": "dev-batch", "deployment": "nothing"}, DEV_CHANGE),
    ("batch_rollback", {"endpoint": "dev-batch"}, DEV_CHANGE),
    # A job that does not exist is guarded as strictly as prod, so 403 or 404 tells nothing about jobs.
    ("batch_resume", {"job_id": "nothing"}, PROD_CHANGE),
    ("outer_loop_test", {"commit": "b" * 40}, TEST_CHANGE),
    ("outer_loop_prod", {"commit": "b" * 40}, PROD_CHANGE),
    ("outer_loop_prod", {"commit": "b" * 40, "override_reason": "hotfix"}, ADMIN),
    ("rollback", {"previous": True}, PROD_CHANGE),
    ("rollback", {"previous": True, "endpoint": "dev-ep"}, DEV_CHANGE),
    ("up", {}, ADMIN),
    ("set_tier", {"tier": "full"}, ADMIN),
    ("user_add", {"name": "ada"}, ADMIN),
    ("user_list", {}, ADMIN),
    ("user_grant", {"name": "rita", "role": "reader", "workspace": "*"}, ADMIN),
    ("token_create", {"user": "rita"}, ADMIN),
    ("token_list", {}, ADMIN),
    ("token_revoke", {"token_id": "000000000000"}, ADMIN),
    ("list_locks", {}, EVERYONE),
    ("sweeps", {"limit": 3}, EVERYONE),
    ("experiment_data", {"last": 3}, EVERYONE),
    ("approvals", {"commit": "b" * 40}, READ_PROD),
    ("approval_requests", {}, READ_PROD),
    # Who may approve is release.approvals' list, checked by the service: the route needs prod's reader.
    ("approve", {"commit": "b" * 40, "reason": "fine"}, READ_PROD),
    ("withdraw", {"commit": "b" * 40, "reason": "leaked labels"}, PROD_CHANGE),
    ("reinstate", {"commit": "b" * 40, "reason": "fine after all"}, PROD_CHANGE),
    ("withdrawals", {}, EVERYONE),
    ("notifications_failed", {}, EVERYONE),
    ("notifications_retry", {}, ADMIN),
    ("notifications_deliver", {}, ADMIN),
    ("unlock", {"name": "release:prod:nothing"}, ADMIN),
]


@pytest.fixture
def team(new_project: ProjectFactory) -> Iterator[Team]:
    """The team, on a control plane that does not rate-limit this test's many refused sign-ins."""
    yield from start_team(new_project("full"), LOOPLINE_CONTROL_PLANE__MAX_FAILED_SIGN_INS="100000")


def _call(team: Team, route: str, body: Any, token: str | None) -> Any:
    body = body() if callable(body) else body
    if isinstance(body, bytes):
        return team.plane.post(route, token=token, content=body, headers={"Content-Type": "application/gzip"})
    return team.plane.post(route, body, token)


def test_every_route_allows_exactly_the_roles_it_should_and_audits_each_refusal(team: Team) -> None:
    document = __import__("httpx").get(f"{team.plane.url}/openapi.json").json()
    assert __import__("httpx").get(f"{team.plane.url}/readyz").json() == {"ready": True}
    routes = {path.removeprefix("/v1/") for path in document["paths"]}
    covered = {route for route, _body, _allowed in CASES}
    assert routes == covered, (
        f"routes without a case: {routes - covered}; cases without a route: {covered - routes}"
    )
    # Nothing of MLflow's own API is reachable through the control plane (prod's store is loopline's).
    assert not [path for path in document["paths"] if "mlflow" in path or "alias" in path]

    refusals = 0
    for route, body, allowed in CASES:
        for user, token in team.tokens.items():
            team.ensure_fixtures()
            answer = _call(team, route, body, token)
            if user in allowed:
                assert answer.status_code != 403, (route, body, user, answer.text)
                assert answer.status_code < 500 or answer.json()["error_code"] == "STORE_UNAVAILABLE", (
                    route,
                    user,
                    answer.text,
                )
            else:
                assert answer.status_code == 403, (route, body, user, answer.status_code, answer.text)
                error = answer.json()
                assert error["error_code"] == "FORBIDDEN"
                assert f"{user} may not" in error["message"] and " role on " in error["message"]
                refusals += 1
        # No token at all: refused before anything else.
        assert _call(team, route, body, None).status_code == 401, route

    # A developer who mistypes a dev endpoint's name is told it does not exist, not to ask for prod.
    mistyped = _call(team, "get_endpoint", {"name": "dev-epp", "workspace": "dev"}, team.tokens["dev"])
    assert (mistyped.status_code, mistyped.json()["error_code"]) == (404, "NOT_FOUND"), mistyped.text
    audited = [r for r in loopline.history(team.project, kind="refused") if r.event.outcome == "forbidden"]
    assert len(audited) == refusals
    assert {r.event.actor for r in audited} <= EVERYONE - {"ada"}
    assert all(
        r.event.details["role_needed"] in {"reader", "developer", "releaser", "admin"} for r in audited
    )


def test_tokens_that_are_malformed_unknown_expired_or_revoked_are_refused_and_guessing_is_rate_limited(
    new_project: ProjectFactory,
) -> None:
    project = new_project("full")
    for team in start_team(project):
        good = team.tokens["rita"]
        assert team.plane.post("status", token=good).status_code == 200
        revoked_id = good.split("_")[1]
        loopline.token_revoke(revoked_id, project=project)
        refused = team.plane.post("status", token=good)
        assert refused.status_code == 401 and f"token {revoked_id} was revoked" in refused.json()["message"]
        assert refused.headers["www-authenticate"] == "Bearer"
        garbage = team.plane.post("status", token="not-a-token")
        assert garbage.status_code == 401 and "malformed" in garbage.json()["message"]
        basic = __import__("httpx").post(
            f"{team.plane.url}/v1/status", headers={"Authorization": "Basic YWRhOmFkYQ=="}, json={}
        )
        assert basic.status_code == 401
        # Three failures so far; the default limit is ten per minute per address.
        guesses = [team.plane.post("status", token=f"ll_{'0' * 12}_{'x' * 43}") for _ in range(7)]
        assert all(g.status_code == 401 and "not known" in g.json()["message"] for g in guesses)
        limited = team.plane.post("status", token=team.tokens["ada"])
        assert limited.status_code == 429, limited.text
        assert limited.json()["error_code"] == "RATE_LIMITED"
        assert 0 < int(limited.headers["retry-after"]) <= 60


def test_secrets_never_reach_logs_answers_or_the_audit_log(team: Team) -> None:
    admin = team.tokens["ada"]
    created = team.plane.post("create_endpoint", {"name": "keyed", "workspace": "dev"}, admin).json()
    keys = list(created["keys"].values())
    assert len(keys) == 2
    rotated = team.plane.post("endpoint_keys", {"name": "keyed", "regenerate": "primary"}, admin).json()
    keys += list(rotated["regenerated"].values())
    minted = team.plane.post("token_create", {"user": "rita", "expires": "1h"}, admin).json()
    assert minted["secret"].startswith("ll_")
    secrets = [*team.tokens.values(), minted["secret"], *keys]
    # Failing calls too: a wrong token, a forbidden call, a bad argument.
    team.plane.post("status", token=secrets[0][:-2] + "zz")
    team.plane.post("user_list", token=team.tokens["rita"])
    team.plane.post("set_traffic", {"name": "keyed", "traffic": {"x": 50}}, admin)
    texts = {
        "log": team.plane.log.read_text(),
        "history": json.dumps([r.to_dict() for r in loopline.history(team.project)]),
        "status": json.dumps(team.plane.post("status", token=admin).json()),
        "token list": json.dumps(team.plane.post("token_list", token=admin).json()),
        "keys": json.dumps(team.plane.post("endpoint_keys", {"name": "keyed"}, admin).json()),
    }
    for where, text in texts.items():
        leaked = [s[:12] + "..." for s in secrets if s in text]
        assert not leaked, f"{where} shows {leaked}"
    assert '"operation":"user_list","user":"rita","status":403' in texts["log"]


@pytest.mark.long
def test_the_cli_and_sdk_work_through_the_control_plane_without_database_access(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A developer's clone: the same project, but none of the instance's state or credentials.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    assert not (clone / ".loopline").exists()
    env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["dev"]}

    registered = cli_process("inner-loop", "--json", cwd=clone, env=env)
    assert registered.exit_code == 0, registered.stderr
    result = registered.json()
    assert result["created"] and result["gate"]["passed"]
    assert result["git_commit"] == git(clone, "rev-parse", "HEAD")
    assert not (clone / ".loopline" / "state.db").exists()
    assert not list(clone.glob(".loopline/workspaces/**/mlflow.db"))

    # The instance has it, as the developer's work: the audit log names the token's user.
    versions = [(m.workspace, m.version, m.git_commit) for m in loopline.status(team.project).models]
    assert ("dev", 1, result["git_commit"]) in versions and ("shared", 1, result["git_commit"]) in versions
    kinds = {
        (r.event.kind, r.event.actor) for r in loopline.history(team.project, commit=result["git_commit"])
    }
    assert {("gate-evaluated", "dev"), ("registered", "dev"), ("shared", "dev")} <= kinds

    # Running it again registers nothing new.
    again = cli_process("inner-loop", "--json", cwd=clone, env=env)
    assert again.exit_code == 0 and not again.json()["created"], again.stderr

    # A commit that changed none of training.paths takes the version before it: nothing is trained.
    config = yaml.safe_load((clone / "loopline.yaml").read_text())
    edit_yaml(clone / "loopline.yaml", training={**config["training"], "paths": ["train.py", "params.yaml"]})
    commit_all(clone, "Only the configuration")
    same = cli_process("inner-loop", "--json", cwd=clone, env=env)
    assert same.exit_code == 0, same.stderr
    assert not same.json()["created"] and same.json()["git_commit"] == result["git_commit"]
    assert "changed nothing in train.py, params.yaml (training.paths)" in same.json()["message"]

    # CI: the inner-loop workflow file, with only LOOPLINE_URL and LOOPLINE_TOKEN as its secrets.
    edit_yaml(clone / "params.yaml", C=0.5)
    second = commit_all(clone, "Less regularisation")
    git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/less-regularisation")  # as CI runs pushed work
    workflow = cli_process("workflow", "run", "inner-loop", "--event", "merge_group", cwd=clone, env=env)
    assert workflow.exit_code == 0, workflow.stdout + workflow.stderr
    shared = [
        m for m in loopline.status(team.project).models if m.workspace == "shared" and m.git_commit == second
    ]
    assert len(shared) == 1
    assert ("shared", "dev") in {
        (r.event.kind, r.event.actor) for r in loopline.history(team.project, commit=second)
    }

    # A dirty tree is refused on the caller's side, before anything is uploaded.
    (clone / "params.yaml").write_text((clone / "params.yaml").read_text() + "\n# tweak\n")
    dirty = cli_process("inner-loop", cwd=clone, env=env)
    assert dirty.exit_code == 1 and "params.yaml" in dirty.stderr
    git(clone, "checkout", "params.yaml")

    # The SDK in this process, as the developer: results are the same dataclasses as a local call.
    monkeypatch.setenv("LOOPLINE_URL", team.plane.url)
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["dev"])
    status = loopline.status(clone)
    assert isinstance(status, loopline.api.Status) and status.tier.value == "full"
    assert any(m.git_commit == result["git_commit"] for m in status.models)
    history = loopline.history(clone, kind="shared")
    assert history[-1].event.kind == "shared" and history[-1].event.actor == "dev"
    with pytest.raises(Forbidden, match="dev may not outer loop prod: it needs the releaser role"):
        loopline.outer_loop_prod(clone)
    denied = cli_process("rollback", "--previous", cwd=clone, env=env)
    assert denied.exit_code == 1 and "needs the releaser role on workspace 'prod'" in denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1

    # A releaser promotes; the developer's token could not.
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["tess"])
    # No --commit: the caller's HEAD, not the control plane's checkout (which is still at the first commit).
    # Its progress streams back to the caller's reporter as the control plane works.
    steps = Steps()
    tested = loopline.connect(team.plane.url, team.tokens["tess"]).outer_loop_test(clone, reporter=steps)
    assert tested.passed and tested.git_commit == second != git(team.project, "rev-parse", "HEAD")
    assert any(step.startswith(f"validating proj-classifier v2 from {second[:7]}") for step in steps.seen)
    assert loopline.validation_report(project=clone).git_commit == second
    # A git ref names a commit of the caller's repository, sent as its SHA: the checkout is still at the first
    mine = loopline.history(clone, commit="HEAD", kind="shared")
    assert mine and {r.event.git_commit for r in mine} == {second}
    refused = team.plane.post("history", {"commit": "HEAD"}, team.tokens["tess"])
    assert refused.status_code == 400 and "is not a commit SHA" in refused.json()["message"]

    dashboard = cli_process("ui", cwd=clone, env=env)
    assert dashboard.exit_code == 2 and f"open {team.plane.url}/ui/" in dashboard.stderr

    monkeypatch.setenv("LOOPLINE_TOKEN", "ll_000000000000_" + "x" * 43)
    with pytest.raises(Unauthenticated, match="not known"):
        loopline.status(clone)
    monkeypatch.delenv("LOOPLINE_TOKEN")
    missing = cli_process("status", cwd=clone, env={"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": ""})
    assert missing.exit_code == 2 and "LOOPLINE_TOKEN is not" in missing.stderr
    commit_all(clone, "unused")  # the clone stays usable for local work


def test_a_developer_uploads_data_through_the_control_plane_without_access_to_the_inbox(
    team: Team, tmp_path: Path
) -> None:
    # The clone's configuration names the inbox as the team's does (a folder of the control plane's host,
    # here): this machine reaches neither it nor loopline's database, and holds the token only.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    team_inbox = team.project / ".loopline" / "datastores" / "inbox"
    env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["dev"]}
    rows = tmp_path / "rows"
    (rows / "2026" / ".cache").mkdir(parents=True)
    (rows / "2026" / "part-0.csv").write_text("x,y\n1,2\n")
    (rows / "part-1.csv").write_text("x,y\n3,4\n")
    (rows / "2026" / ".cache" / "notes").write_text("hidden: left out, as a datastore's listing leaves it")
    uploaded = cli_process("data", "upload", "scoring", str(rows), "--json", cwd=clone, env=env)
    assert uploaded.exit_code == 0, uploaded.stderr
    said = uploaded.json()
    assert said["created"] and said["files"] == 2 and said["path"].startswith("inbox://scoring/")
    landed = team_inbox / said["path"].removeprefix("inbox://")
    assert sorted(p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()) == [
        "2026/part-0.csv",
        "part-1.csv",
    ]
    assert (landed / "2026" / "part-0.csv").read_text() == "x,y\n1,2\n"
    assert not (clone / ".loopline").exists()  # neither copied nor pinned here
    [asset] = loopline.list_data("scoring", project=team.project)
    assert (asset.version, asset.created_by, asset.digest) == (1, "dev", said["digest"])
    assert list((team.project / ".loopline" / "uploads").iterdir()) == []  # the upload is gone once used

    # The same bytes again: no new version. One file: pinned under its own name.
    again = cli_process("data", "upload", "scoring", str(rows), "--json", cwd=clone, env=env)
    assert again.exit_code == 0 and not again.json()["created"], again.stderr
    one = cli_process("data", "upload", "one", str(rows / "part-1.csv"), "--json", cwd=clone, env=env)
    assert one.exit_code == 0, one.stderr
    assert one.json()["path"].endswith("/part-1.csv") and one.json()["files"] == 1
    assert loopline.get_data("one", project=team.project).single_file

    # A reader's upload is refused before its bytes are kept, and nothing is pinned.
    (rows / "part-1.csv").write_text("x,y\n3,5\n")
    refused = cli_process(
        "data", "upload", "scoring", str(rows), cwd=clone, env={**env, "LOOPLINE_TOKEN": team.tokens["rita"]}
    )
    assert refused.exit_code == 1 and "needs the developer role" in refused.stderr, refused.stderr
    assert [a.version for a in loopline.list_data("scoring", project=team.project)] == [1]
    assert list((team.project / ".loopline" / "uploads").iterdir()) == []
    # An upload names the call it is for; an upload named with a digest other than its bytes' pins nothing.
    client = loopline.connect(team.plane.url, team.tokens["dev"])
    with pytest.raises(UsageError, match="an upload is for inner_loop or upload_data, not 'status'"):
        client.post("uploads?for=status", b"", "application/gzip")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(rows / "part-1.csv", arcname="data/part-1.csv")
    upload = client.post("uploads?for=upload_data", archive.read_bytes(), "application/gzip")["upload"]
    body = {"upload": upload, "name": "scoring", "digest": said["digest"], "single": True}
    before = sorted(team_inbox.rglob("*"))
    with pytest.raises(IntegrityViolation, match="not the ones sent"):
        client.post("upload_data", json.dumps(body).encode())
    assert [a.version for a in loopline.list_data("scoring", project=team.project)] == [1]
    assert sorted(team_inbox.rglob("*")) == before  # nothing copied into the inbox either


def test_a_developer_with_access_to_the_inbox_copies_the_files_directly(team: Team, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    # The team's inbox, which this machine reaches as it would the team's object store.
    inbox = team.project / ".loopline" / "datastores" / "inbox"
    env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_DATASTORES__INBOX__URL": str(inbox)}
    (tmp_path / "new.csv").write_text("x,y\n1,2\n3,4\n")
    uploaded = cli_process(
        "data", "upload", "scoring", str(tmp_path / "new.csv"), "--direct", "--json", cwd=clone,
        env={**env, "LOOPLINE_TOKEN": team.tokens["dev"]},
    )  # fmt: skip
    assert uploaded.exit_code == 0, uploaded.stderr
    said = uploaded.json()
    assert said["created"] and said["path"].startswith("inbox://scoring/")
    assert (inbox / said["path"].removeprefix("inbox://")).read_text() == "x,y\n1,2\n3,4\n"
    assert not (clone / ".loopline" / "state.db").exists()  # pinned by the control plane, not here
    assert not (team.project / ".loopline" / "uploads").exists() or not list(
        (team.project / ".loopline" / "uploads").iterdir()
    )  # nothing travelled through the control plane
    [asset] = loopline.list_data("scoring", project=team.project)
    assert (asset.version, asset.created_by, asset.digest) == (1, "dev", said["digest"])
    # Other bytes at that path (changed there since it was copied): the next upload copies the file over.
    copied = inbox / said["path"].removeprefix("inbox://")
    copied.write_text("x,y\n9,9\n")
    mended = cli_process(
        "data", "upload", "scoring", str(tmp_path / "new.csv"), "--direct", "--json", cwd=clone,
        env={**env, "LOOPLINE_TOKEN": team.tokens["dev"]},
    )  # fmt: skip
    assert mended.exit_code == 0, mended.stderr
    assert not mended.json()["created"] and copied.read_text() == "x,y\n1,2\n3,4\n"
    # A reader copies nothing that gets pinned: the control plane refuses the registration.
    (tmp_path / "new.csv").write_text("x,y\n1,2\n3,5\n")
    refused = cli_process(
        "data", "upload", "scoring", str(tmp_path / "new.csv"), "--direct", cwd=clone,
        env={**env, "LOOPLINE_TOKEN": team.tokens["rita"]},
    )  # fmt: skip
    assert refused.exit_code == 1 and "needs the developer role" in refused.stderr, refused.stderr
    assert [a.version for a in loopline.list_data("scoring", project=team.project)] == [1]


# The sample's run as data scientists write theirs: an experiment of their own, a named and described run,
# a loss logged at every step and the training rows logged as an MLflow dataset.
OWN_RUN = """\
    mlflow.set_experiment("churn-team")
    with mlflow.start_run(run_name="logreg-C1", description="The baseline, from a laptop"):
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("train_loss", loss, step=step)
        rows = mlflow.data.from_pandas(x_train, source="s3://churn/train.parquet", name="churn-train")
        mlflow.log_input(rows, context="training")
"""


def test_a_training_s_input_files_come_through_one_connection_to_the_control_plane(
    team: Team, tmp_path: Path
) -> None:
    # each file is a call of its own: over TLS, a connection each was a handshake each
    from urllib.parse import urlsplit

    from loopline.remote.client import connect
    from loopline.remote.data import RemoteAssets

    days = tmp_path / "days"
    days.mkdir()
    for day in range(12):
        (days / f"day-{day:02d}.csv").write_text(f"x,y\n{day},{day * 2}\n")
    loopline.upload_data("days", days, project=team.project)
    with ConnectionCounter(urlsplit(team.plane.url).port or 80) as counter:
        assets = RemoteAssets(connect(counter.url, team.tokens["dev"]))
        asset = assets.find("days", None)
        read = {}
        for entry in assets.files(asset):
            with assets.chunks(asset, entry) as chunks:
                read[entry["path"]] = b"".join(chunks).decode()
    assert read == {f"day-{day:02d}.csv": f"x,y\n{day},{day * 2}\n" for day in range(12)}
    assert counter.connections == 1


def test_training_inputs_come_from_the_control_plane_and_the_run_reads_in_dev_as_it_was_logged(
    team: Team, tmp_path: Path
) -> None:
    # The clone reaches neither loopline's database nor the team's inbox: the versions and their files
    # come from the control plane, each file checked against the digest it was registered with
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    inbox = team.project / ".loopline" / "datastores" / "inbox"
    env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["dev"]}
    (tmp_path / "rows.csv").write_text("x,y\n1,2\n3,4\n")
    uploaded = cli_process("data", "upload", "rows", str(tmp_path / "rows.csv"), "--json", cwd=clone, env=env)
    assert uploaded.exit_code == 0, uploaded.stderr
    config = yaml.safe_load((clone / "loopline.yaml").read_text())
    edit_yaml(clone / "loopline.yaml", training={**config["training"], "inputs": {"extra": "rows"}})
    training = (clone / "train.py").read_text()
    (clone / "train.py").write_text(training.replace("    with mlflow.start_run():\n", OWN_RUN, 1))
    commit_all(clone, "Train with the team's rows")
    git(
        clone, "push", "--quiet", "origin", "HEAD:refs/heads/team-rows"
    )  # the control plane checks the commit
    trained = cli_process("inner-loop", "--json", cwd=clone, env=env)
    assert trained.exit_code == 0, trained.stderr
    assert (clone / ".loopline" / "inputs" / "rows-1" / "rows.csv").read_text() == "x,y\n1,2\n3,4\n"
    commit = trained.json()["git_commit"]
    version = next(
        m for m in loopline.status(team.project).models if (m.workspace, m.git_commit) == ("dev", commit)
    )
    # the uploaded run names the version it read, as its tag and as an MLflow dataset of the run
    assert trained_on(team.project, version.version) == {"extra": f"rows:1 {uploaded.json()['digest']}"}
    # and reads in dev as it did in the clone's scratch store: its experiment, name, description, every
    # step of its loss and its own dataset beside the data asset's
    client = mlflow_client(team.project, "dev")
    run = client.get_run(trained.json()["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "churn-team"
    assert (run.info.run_name, run.data.tags["mlflow.note.content"]) == (
        "logreg-C1",
        "The baseline, from a laptop",
    )
    loss = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in loss] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert run.data.metrics["accuracy"] == trained.json()["gate"]["checks"][0]["value"]
    datasets = {(d.dataset.name, d.dataset.source_type) for d in run.inputs.dataset_inputs}
    assert datasets == {("churn-train", "s3"), ("rows", "loopline-data-asset")}
    churn = next(d for d in run.inputs.dataset_inputs if d.dataset.name == "churn-train")
    assert json.loads(churn.dataset.source)["uri"] == "s3://churn/train.parquet" and churn.dataset.schema
    assert [(t.key, t.value) for t in churn.tags] == [("mlflow.data.context", "training")]
    # its logged model keeps the params, tags and metrics MLflow gave it (the experiment's Models page)
    [logged] = [
        m for m in client.search_logged_models([run.info.experiment_id]) if m.source_run_id == run.info.run_id
    ]
    # (the run's metrics at step 0, as MLflow linked them where the model was logged)
    assert {m.key: m.value for m in logged.metrics} == {**run.data.metrics, "train_loss": 0.9}
    assert logged.params == run.data.params and logged.params["C"] == "1.0"
    assert (logged.tags["loopline.git_commit"], logged.tags["mlflow.user"]) == (commit, "dev")

    # Bytes changed in the team's inbox since they were registered: no training reads them, no copy stays
    (inbox / uploaded.json()["path"].removeprefix("inbox://")).write_text("x,y\n1,2\n3,9\n")
    shutil.rmtree(clone / ".loopline" / "inputs")
    edit_yaml(clone / "params.yaml", C=0.7)
    git(clone, "push", "--quiet", "origin", f"{commit_all(clone, 'Another model')}:refs/heads/team-rows-2")
    refused = cli_process("inner-loop", cwd=clone, env=env)
    assert refused.exit_code == 1, refused.stderr
    assert "data asset rows:1 (inbox://rows/" in refused.stderr
    assert "changed since it was registered (its file 'rows.csv' holds other bytes)" in refused.stderr
    assert list((clone / ".loopline" / "inputs").iterdir()) == []


def test_a_job_with_only_a_control_plane_token_writes_and_posts_the_experiment_report(
    team: Team, tmp_path: Path
) -> None:
    # CI's inner-loop job holds the control plane's URL and a token, no store credential: dev's runs are
    # read on the control plane, the report is written here and posted as this job (GitHub's REST API
    # is a stand-in: its own servers cannot be reached from here)
    loopline.inner_loop(team.project)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    github = _GitHub()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    env = {
        "LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["rita"],
        "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/churn", "GITHUB_TOKEN": "ghs_test",
        "GITHUB_API_URL": github.url,
    }  # fmt: skip
    try:
        done = cli_process("report", "experiment", "--comment", "--json", cwd=clone, env=env)
    finally:
        github.server.shutdown()
    assert done.exit_code == 0, done.stderr
    report = done.json()
    there = loopline.experiment_data(project=team.project)
    assert [r["run_id"] for r in report["runs"]] == [r.run_id for r in there.runs]
    assert report["latest_commit"] == there.latest_commit == git(team.project, "rev-parse", "HEAD")
    folder = Path(report["folder"])
    assert folder.parent == clone / ".loopline" / "reports"
    assert (folder / "experiment.md").read_text().startswith("# Experiment report: proj")
    assert report["charts"] and all(Path(chart).is_file() for chart in report["charts"])
    [comment] = github.comments
    assert comment["path"] == "/repos/acme/churn/issues/7/comments" and "xychart-beta" in comment["body"]
    assert report["comment_url"].startswith("https://github.example/")
    assert not (clone / ".loopline" / "state.db").exists()  # nothing of loopline's database here


def test_a_developer_sweeps_on_their_machine_and_the_control_plane_registers_the_best_trial(
    team: Team, tmp_path: Path
) -> None:
    # Trials train here into a scratch store (kept until the sweep ends, so a killed sweep goes on where
    # it stopped); the best trial's run is uploaded and registered as an inner loop's is.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    space = {
        "trials": 3,
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "parameters": {"C": {"low": 0.01, "high": 10, "log": True}},
        "seed": 5,
    }
    edit_yaml(clone / "loopline.yaml", sweep=space)
    commit = commit_all(clone, "Sweep C")
    git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/sweep-c")  # the control plane checks it
    env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["dev"]}
    kill_sweep_in_its_second_trial(clone, env)
    [kept] = (clone / ".loopline" / "scratch-sweeps").iterdir()  # the first trial's run, for the resume
    assert kept.name.endswith(commit)

    done = cli_process("sweep", "--json", cwd=clone, env=env)
    assert done.exit_code == 0, done.stderr
    result = done.json()
    assert result["ran"] == 2 and len([t for t in result["trials"] if t["state"] == "complete"]) == 3
    registered = result["inner_loop"]
    assert registered["created"] and registered["git_commit"] == commit
    assert not (clone / ".loopline" / "state.db").exists()
    assert not (clone / ".loopline" / "scratch-sweeps" / result["study"]).exists()  # gone once registered
    [version] = [
        m for m in loopline.status(team.project).models if (m.workspace, m.git_commit) == ("dev", commit)
    ]
    assert version.provenance == "uploaded"
    run = mlflow_client(team.project, "dev").get_run(registered["run_id"])
    assert run.data.tags["loopline.sweep_trial"] == str(result["best"]["number"])
    assert float(run.data.params["C"]) == pytest.approx(result["best"]["params"]["C"])
    # dev shows the whole sweep, as a sweep run there does: its parent run and every trial nested in it
    client = mlflow_client(team.project, "dev")
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert (
        parent.info.run_name == f"sweep {commit[:7]}" and parent.data.tags["best.run_id"] == run.info.run_id
    )
    trials = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    finished = {
        t.data.tags["loopline.sweep_trial"]: t.info.run_id for t in trials if t.info.status == "FINISHED"
    }
    complete = {str(t["number"]) for t in result["trials"] if t["state"] == "complete"}
    assert set(finished) == complete and finished[str(result["best"]["number"])] == run.info.run_id
    assert {t.data.tags["mlflow.user"] for t in trials} == {"dev"}
    assert {t.data.tags["loopline.git_commit"] for t in trials} == {commit}
    # so the control plane's sweeps (the dashboard's experiments page lists them) show it, from dev's runs
    [listed] = team.plane.post("sweeps", {"limit": 3}, team.tokens["rita"]).json()
    assert (listed["study"], listed["git_commit"], listed["best_trial"]) == (
        result["study"],
        commit,
        str(result["best"]["number"]),
    )
    assert sorted(t["trial"] for t in listed["trials"]) == sorted(int(n) for n in complete)

    again = cli_process("sweep", "--json", cwd=clone, env=env)
    assert again.exit_code == 0 and again.json()["best"] is None and not again.json()["inner_loop"]["created"]


def _mlflow_defaults() -> None:
    """This process's MLflow back to its defaults, for the tests after this one."""
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    mlflow.tracking.fluent._active_experiment_id = None


def _logs_a_param(clone: Path) -> tuple[Any, str]:
    """``use_workspace("dev")``, then a run with one param: what it answered, and the run's ID."""
    info = loopline.use_workspace("dev", project=clone)
    try:
        with mlflow.start_run() as run:
            mlflow.log_param("C", 0.5)
    finally:
        _mlflow_defaults()
    return info, run.info.run_id


def test_a_member_s_notebook_logs_to_dev_through_the_control_plane_or_its_own_access_to_the_store(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(team.project), str(clone))
    monkeypatch.setenv("LOOPLINE_URL", team.plane.url)
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["dev"])
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)  # use_workspace sets it: gone afterwards
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # set_experiment sets it: gone afterwards
    # dev's store is a file of the control plane's host: MLflow logs through the control plane, with the
    # member's token, and nothing is made here (where `loopline up` would have made a laptop's)
    info, run_id = _logs_a_param(clone)
    assert (info.tracking_uri, info.experiment) == (f"{team.plane.url}/mlflow/dev", "proj")
    logged = mlflow_client(team.project, "dev").get_run(run_id)
    assert logged.data.params == {"C": "0.5"} and logged.data.tags["mlflow.user"] == "dev"
    assert not (clone / ".loopline").exists()
    # test and prod are not logged to from a notebook: a developer of dev alone is refused, with what
    # to do; a reader of prod reads its registry (and loads its models) through the control plane
    with pytest.raises(StoreUnavailable, match="a file of the control plane's host") as refused:
        loopline.use_workspace("prod", project=clone)
    assert "`loopline inner-loop` trains here" in refused.value.message
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["paul"])
    try:
        info = loopline.use_workspace("prod", project=clone)
        assert (info.tracking_uri, info.registry_uri) == (f"{team.plane.url}/mlflow/prod",) * 2
        mlflow_client(team.project, "prod").create_registered_model("released-here")  # as a release would
        assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == ["released-here"]
        with pytest.raises(mlflow.exceptions.MlflowException, match="runs are logged to dev"):
            mlflow.MlflowClient().search_experiments()
    finally:
        _mlflow_defaults()
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["dev"])
    # A token that does not sign in is told so before anything is logged
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["paul"][:-4] + "xxxx")
    with pytest.raises(StoreUnavailable, match="UNAUTHENTICATED"):
        loopline.use_workspace("dev", project=clone)
    _mlflow_defaults()
    monkeypatch.setenv("LOOPLINE_TOKEN", team.tokens["dev"])

    # With this machine's access to the store (here, the team's file; a database URL with credentials on
    # a team's hosts), MLflow logs there, and loopline's database is not needed
    uri = f"sqlite:///{team.project}/.loopline/workspaces/dev/mlflow.db"
    monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__TRACKING_URI", uri)
    info, run_id = _logs_a_param(clone)
    assert (info.tracking_uri, info.experiment) == (uri, "proj")
    assert mlflow_client(team.project, "dev").get_run(run_id).data.params == {"C": "0.5"}
    assert not (clone / ".loopline" / "state.db").exists()

"""Two `loopline serve` replicas on one PostgreSQL state and one Blob store, under 32 concurrent clients.

A release, a rollback, a key rotation and the kill and restart of one replica happen while the clients
score through both replicas; bounded by a fixed number of steps, each a few seconds long.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

import loopline
from loopline.state import Database
from tests.conftest import ProjectFactory
from tests.helpers import commit_all, edit_yaml, git, heldout_request, system_key, wait_until
from tests.servers import Load, Server, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timing]

FOLLOW = 1.0  # seconds within which every replica must answer with the new traffic


def _deployment_of(project: Path, commit: str) -> str:
    info = loopline.get_endpoint("proj", project=project)
    return next(d.name for d in info.deployments if d.git_commit == commit)


def _after(load: Load, since: float, until: float, replica: int) -> list[tuple[float, int, str, int]]:
    return [a for a in load.answers if since <= a[0] < until and a[3] == replica]


def _assert_follows(load: Load, done: float, deployment: str, replicas: tuple[int, ...]) -> None:
    """From FOLLOW seconds after ``done`` on, every replica answers only with ``deployment``."""
    time.sleep(FOLLOW + 1.5)
    for replica in replicas:
        answers = _after(load, done + FOLLOW, time.monotonic(), replica)
        assert len(answers) > 20, f"replica {replica} answered only {len(answers)} requests"
        others = Counter(a[2] for a in answers if a[2] != deployment)
        assert not others, f"replica {replica} still answered with {dict(others)} {FOLLOW} s after the change"


def _headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": "application/json"}


def _wait_key(urls: list[str], body: bytes, key: str) -> float:
    """Seconds until every replica accepts ``key``."""
    started = time.monotonic()
    pending = set(urls)
    while pending and time.monotonic() - started < 10:
        for url in list(pending):
            answer = httpx.post(url, content=body, headers=_headers(key), timeout=5)
            if answer.status_code == 200:
                pending.discard(url)
        time.sleep(0.02)
    assert not pending, f"{pending} never accepted the new key"
    return time.monotonic() - started


def serving_role(state_url: str) -> str:
    """Run docs/security.md's SQL for the serving role on the state database; that role's URL."""
    page = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    sql = re.search(r"```sql\n(.*?)\n```", page, re.S)
    assert sql is not None
    with Database(state_url).write() as connection:
        for statement in sql.group(1).replace("'...'", "'replica-pw'").split(";"):
            if statement.strip():
                connection.execute(text(statement))
    return state_url.replace("://postgres@", "://loopline_serving:replica-pw@")


def _readiness(replicas: list[Server]) -> list[dict[str, Any]]:
    """Each replica's /readyz answer."""
    return [httpx.get(f"{replica.url}/readyz").json() for replica in replicas]


def _block_connections(state_url: str, *, allow: bool) -> float:
    """Let nobody (or everybody again) connect to the state database, ending the open connections."""
    name = state_url.rsplit("/", 1)[1]
    admin = Database(state_url.rsplit("/", 1)[0] + "/postgres")
    with admin.write() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
    if not allow:  # once the refusal holds: a connection ended before it could be made again at once
        with admin.write() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
    return time.monotonic()


def test_two_replicas_follow_a_release_a_rollback_and_a_key_rotation_and_survive_a_restart(
    on_postgres: Any, on_azurite: str, new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [free_port(), free_port()]
    # The prod endpoints' URL is replica 0 (in production: the load balancer in front of all replicas).
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{ports[0]}")
    project = new_project("simple")
    a = git(project, "rev-parse", "HEAD")
    loopline.inner_loop(project)
    edit_yaml(project / "params.yaml", C=0.5)
    b = commit_all(project, "Less regularisation")
    loopline.inner_loop(project)
    loopline.outer_loop_prod(project, commit=a)
    keys = loopline.endpoint_keys("proj", regenerate="secondary", project=project).regenerated

    body = heldout_request(project)
    # Replica 1 connects with the narrow database role docs/security.md gives replicas.
    narrow = serving_role(os.environ["LOOPLINE_STATE__URL"])
    replicas = [
        Server(project, "prod", port=ports[0]),
        Server(project, "prod", port=ports[1], env={"LOOPLINE_STATE__URL": narrow}),
    ]
    try:
        for replica in replicas:
            replica.wait_ready()
        urls = [f"{r.url}/endpoints/proj/score" for r in replicas]
        load = Load(urls, body, [system_key(project)])
        thread = load.run()
        time.sleep(1.0)

        loopline.outer_loop_prod(project, commit=b)
        released = time.monotonic()
        _assert_follows(load, released, _deployment_of(project, b), (0, 1))

        loopline.rollback(project, commit=a[:7], reason="drill")
        rolled = time.monotonic()
        _assert_follows(load, rolled, _deployment_of(project, a), (0, 1))

        fresh = loopline.endpoint_keys("proj", regenerate="secondary", project=project).regenerated
        assert _wait_key(urls, body, fresh["secondary"]) < FOLLOW
        old = httpx.post(urls[1], content=body, headers=_headers(keys["secondary"]))
        assert old.status_code == 401

        # Through the release, the rollback and the rotation: not one failed request on either replica.
        assert all(status == 200 for _, status, _, _ in load.answers), Counter(x[1] for x in load.answers)
        # Each replica (the narrow one too) reported what answers every deployment it loaded.
        reported = loopline.get_endpoint("proj", serving=True, project=project).deployments
        assert all(len({path.replica for path in d.serving or ()}) == 2 for d in reported), reported

        # Kill replica 1 outright; replica 0 keeps answering every request sent to it.
        killed = time.monotonic()
        assert replicas[1].stop(signal.SIGKILL) == -signal.SIGKILL
        time.sleep(1.5)
        replicas[1] = Server(project, "prod", port=ports[1], env={"LOOPLINE_STATE__URL": narrow})
        replicas[1].wait_ready()
        restarted = time.monotonic()
        loopline.rollback(project, previous=True, reason="forward again")
        forward = time.monotonic()
        _assert_follows(load, forward, _deployment_of(project, b), (0, 1))

        # Without their database the replicas keep answering with the last routing table, and say so.
        # (Each notices at its next look at the database, which a busy machine can delay past the second
        # and a half this used to wait: a late notice is not a failed request.)
        cut = _block_connections(os.environ["LOOPLINE_STATE__URL"], allow=False)
        time.sleep(1.5)
        wait_until(
            lambda: all(isinstance(r["database"], dict) for r in _readiness(replicas)),
            10,
            "both replicas to say they cannot read their database",
        )
        for readiness in _readiness(replicas):
            assert readiness["ready"] and readiness["database"]["since"], readiness
        _block_connections(os.environ["LOOPLINE_STATE__URL"], allow=True)
        wait_until(
            lambda: [r["database"] for r in _readiness(replicas)] == ["following"] * 2,
            10,
            "both replicas to follow their database again",
        )
        during = [x for x in load.answers if cut + 0.2 <= x[0] < cut + 1.5]
        assert len(during) > 20 and {x[1] for x in during} == {200}, Counter(x[1] for x in during)
        load.stop.set()
        thread.join(timeout=30)
    finally:
        for replica in replicas:
            replica.stop()

    statuses = Counter((a[3], a[1]) for a in load.answers)
    print(f"\n{len(load.answers)} requests through 2 replicas: {dict(statuses)}")
    assert all(status == 200 for _, status, _, replica in load.answers if replica == 0)
    failed_on_1 = [x for x in load.answers if x[3] == 1 and x[1] != 200]
    # Replica 1's own clients see it go away and come back; nothing else fails.
    assert all(killed <= x[0] <= restarted + FOLLOW for x in failed_on_1), failed_on_1[:3]
    back = [x for x in _after(load, restarted, float("inf"), 1) if x[1] == 200]
    assert len(back) > 20
    # The narrow role served, counted and sampled, and can read neither the audit log nor users or tokens.
    assert "permission denied" not in replicas[1].errors.read_text()
    for table in ("events", "users", "tokens", "model_versions", "instance_secrets"):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            Database(narrow).read() as connection,
        ):
            connection.execute(text(f"SELECT * FROM {table}"))
    with pytest.raises(ProgrammingError, match="permission denied"), Database(narrow).write() as connection:
        connection.execute(text("UPDATE deployments SET traffic = 0"))

"""Users, roles and tokens in loopline's own database: hashed, expiring, revocable, audited."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import loopline
from loopline.access import ALL_WORKSPACES, Role, authenticate
from loopline.domain import utcnow
from loopline.errors import Forbidden, NotFound, TierDisabled, Unauthenticated, UsageError
from loopline.instance import Instance
from loopline.state.schema import tokens
from tests.conftest import ProjectFactory
from tests.helpers import cli


def _db(project: Path) -> Path:
    return project / ".loopline" / "state.db"


def test_a_token_is_shown_once_and_only_its_hash_is_stored(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    loopline.user_add("ada", project=project)
    token = loopline.token_create("ada", project=project)
    assert token.secret is not None and token.secret.startswith(f"ll_{token.id}_")
    stored = "".join(p.read_bytes().decode("latin-1") for p in _db(project).parent.glob("state.db*"))
    assert token.id in stored and token.secret not in stored
    listed = loopline.token_list(project=project)
    assert [t.id for t in listed] == [token.id]
    assert all(t.secret is None and "token" not in t.to_dict() for t in listed)
    history = loopline.history(project, kind="token-created")
    assert history[-1].event.details["token_id"] == token.id
    assert token.secret not in str([r.to_dict() for r in history])


def test_authenticate_refuses_missing_malformed_unknown_expired_and_revoked_tokens(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    db = Instance.open(project).db
    loopline.user_add("ada", project=project)
    loopline.user_grant("ada", "releaser", "prod", project=project)
    good = loopline.token_create("ada", expires="1h", project=project)
    assert good.expires_at is not None and timedelta(minutes=59) < good.expires_at - utcnow() <= timedelta(
        hours=1
    )
    caller = authenticate(db, good.secret)
    assert caller.user == "ada" and caller.roles == {"prod": Role.RELEASER}

    problems = {
        None: "no token was sent",
        "hunter2": "malformed",
        good.secret[:-1] + ("A" if good.secret[-1] != "A" else "B"): "not known",  # type: ignore[index]
    }
    for token, problem in problems.items():
        with pytest.raises(Unauthenticated, match=problem):
            authenticate(db, token)

    expiring = loopline.token_create("ada", expires="30d", project=project)
    with db.write() as connection:
        connection.execute(
            update(tokens)
            .where(tokens.c.id == expiring.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(Unauthenticated, match=f"token {expiring.id} expired"):
        authenticate(db, expiring.secret)

    revoked = loopline.token_revoke(good.id, project=project)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match=f"token {good.id} was revoked"):
        authenticate(db, good.secret)
    # Revoking again changes nothing and records nothing more.
    before = len(loopline.history(project, kind="token-revoked"))
    assert loopline.token_revoke(good.id, project=project).revoked_at == revoked.revoked_at
    assert len(loopline.history(project, kind="token-revoked")) == before == 1


def test_roles_include_the_ones_below_them_and_a_star_grant_counts_everywhere(
    new_project: ProjectFactory,
) -> None:
    project = new_project("full")
    db = Instance.open(project).db
    loopline.user_add("tess", project=project)
    loopline.user_grant("tess", "releaser", "test", project=project)
    loopline.user_grant("tess", "reader", ALL_WORKSPACES, project=project)
    token = loopline.token_create("tess", project=project)
    caller = authenticate(db, token.secret)
    caller.require(Role.DEVELOPER, "test", "deploy")
    caller.require(Role.READER, "prod", "read")
    with pytest.raises(
        Forbidden, match="tess may not release: it needs the releaser role on workspace 'prod'"
    ):
        caller.require(Role.RELEASER, "prod", "release")
    with pytest.raises(Forbidden, match=r"admin role on every workspace \(\*\)"):
        caller.require(Role.ADMIN, ALL_WORKSPACES, "add users")
    # Taking a role away: the next sign-in no longer has it.
    info = loopline.user_grant("tess", None, "test", project=project)
    assert info.roles == {ALL_WORKSPACES: "reader"}
    with pytest.raises(Forbidden):
        authenticate(db, token.secret).require(Role.DEVELOPER, "test", "deploy")


def test_bad_users_roles_workspaces_and_durations_get_one_line_and_change_nothing(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    loopline.user_add("ada", project=project)
    rows_before = sqlite3.connect(_db(project)).execute("SELECT count(*) FROM events").fetchone()[0]
    cases = [
        (("user", "add", "bad name!"), 2, "user name 'bad name!' is not valid"),
        (("user", "grant", "ada", "--role", "owner", "-w", "dev"), 2, "role 'owner' does not exist"),
        (("user", "grant", "ada", "--role", "reader", "-w", "test"), 1, "workspace 'test' is not part"),
        (("user", "grant", "bob", "--role", "reader", "-w", "dev"), 1, "user 'bob' does not exist"),
        (("token", "create", "--user", "ada", "--expires", "0d"), 2, "--expires '0d' is not a duration"),
        (("token", "create", "--user", "bob"), 1, "user 'bob' does not exist"),
        (("token", "revoke", "000000000000"), 1, "token '000000000000' does not exist"),
    ]
    for args, code, message in cases:
        result = cli(capsys, *args, "-C", str(project))
        assert result.exit_code == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    rows_after = sqlite3.connect(_db(project)).execute("SELECT count(*) FROM events").fetchone()[0]
    assert rows_after == rows_before
    assert [u.roles for u in loopline.user_list(project=project)] == [{}]
    assert loopline.token_list(project=project) == []
    for error in (NotFound, TierDisabled, UsageError):
        assert issubclass(error, Exception)

"""loopline on a real PostgreSQL: migrations on `up`, the audit chain's tamper check, moving from SQLite."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import text

import loopline
from loopline import audit
from loopline.events import Registered
from loopline.state import HEAD_REVISION, Database
from tests.conftest import ProjectFactory
from tests.helpers import cli


def test_up_creates_the_databases_and_migrates_once(new_project: ProjectFactory, on_postgres: Any) -> None:
    project = new_project("simple")
    status = loopline.status(project)
    assert Database(status.state_url).revision() == HEAD_REVISION
    assert status.state_url.startswith("postgresql")
    assert status.stores["prod"]["tracking_uri"].startswith("postgresql://")
    assert not loopline.up(project).created


def test_database_passwords_stay_out_of_outputs_and_the_audit_log(
    new_project: ProjectFactory,
    on_postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The throwaway cluster trusts every local connection, so any password works: a real one to hide.
    for variable in [v for v in os.environ if v.startswith("LOOPLINE_") and v.endswith("_URI")]:
        monkeypatch.setenv(variable, os.environ[variable].replace("postgres@", "postgres:s3cret-pw@"))
    state = os.environ["LOOPLINE_STATE__URL"]
    monkeypatch.setenv("LOOPLINE_STATE__URL", state.replace("postgres@", "postgres:s3cret-pw@"))
    project = new_project("full")
    outputs = [
        cli(capsys, *command, "--json", "-C", str(project))
        for command in (("status",), ("history",), ("audit", "verify"), ("up",), ("tier", "show"))
    ]
    assert all(o.exit_code == 0 for o in outputs), [o.stderr for o in outputs]
    shown = "".join(o.stdout + o.stderr for o in outputs)
    assert "***" in shown and "s3cret-pw" not in shown
    with Database(state).read() as connection:
        rows = connection.execute(text("SELECT * FROM events")).fetchall()
    assert rows and "s3cret-pw" not in str(rows)


def test_an_unreachable_database_is_named_without_its_password(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False)
    monkeypatch.setenv("LOOPLINE_STATE__URL", "postgresql+psycopg://ci:s3cret-pw@127.0.0.1:1/state")
    result = cli(capsys, "up", "-C", str(project))
    assert result.exit_code == 4
    assert "127.0.0.1:1" in result.stderr and "s3cret-pw" not in result.stderr + result.stdout
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr

    monkeypatch.setenv("LOOPLINE_STATE__URL", "postgresql+pg8000://ci:s3cret-pw@127.0.0.1:1/state")
    result = cli(capsys, "up", "-C", str(project))
    assert (
        result.exit_code == 2 and "driver 'pg8000'" in result.stderr and "loopline[postgres]" in result.stderr
    )


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "truncate"])
def test_audit_verify_names_the_event_that_was_tampered_with(
    postgres: Any, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(postgres.url())
    db.upgrade()
    for version in range(1, 6):
        audit.record(
            db, Registered(actor="ana", workspace="dev", model="m", version=version, git_commit="c" * 40)
        )
    assert audit.verify(db).intact
    with db.engine.begin() as connection:
        if tamper == "edit":
            connection.execute(text("UPDATE events SET version = 9 WHERE seq = 3"))
        elif tamper == "delete":
            connection.execute(text("DELETE FROM events WHERE seq = 3"))
        elif tamper == "reorder":
            connection.execute(text("UPDATE events SET seq = 100 WHERE seq = 2"))
            connection.execute(text("UPDATE events SET seq = 2 WHERE seq = 3"))
            connection.execute(text("UPDATE events SET seq = 3 WHERE seq = 100"))
        else:
            connection.execute(text("DELETE FROM events WHERE seq = 5"))
    found = audit.verify(db)
    assert not found.intact
    expected = {
        "edit": "event #3 (registered) was edited",
        "delete": "event #3 is missing",
        "reorder": "event #2 does not follow",
        "truncate": "the newest events were deleted",
    }[tamper]
    assert any(expected in p["problem"] for p in found.problems), found.problems
    db.dispose()


def test_migrate_state_moves_history_to_postgres_and_the_instance_carries_on(
    trained_project: ProjectFactory,
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = trained_project("simple")
    assert loopline.audit_verify(project=project).intact
    before = loopline.history(project)
    models = loopline.status(project).models
    target = postgres.url()
    result = cli(capsys, "migrate-state", "--to", target, "-C", str(project), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rows"]["events"] == len(before) and result.json()["rows"]["model_versions"] == len(
        models
    )

    monkeypatch.setenv("LOOPLINE_STATE__URL", target)
    after = loopline.history(project)
    assert [(r.seq, r.event_id, r.hash) for r in after[:-1]] == [(r.seq, r.event_id, r.hash) for r in before]
    assert after[-1].event.kind == "state-migrated"
    assert loopline.status(project).models == models
    assert cli(capsys, "audit", "verify", "-C", str(project)).exit_code == 0
    created = loopline.create_endpoint("after-move", "dev", project=project)
    assert loopline.history(project)[-1].seq == after[-1].seq + 1
    assert created.endpoint.name == "after-move"

    again = cli(capsys, "migrate-state", "--to", target, "-C", str(project))
    assert again.exit_code == 1 and "already holds loopline data" in again.stderr


def test_history_takes_page_bounds_beyond_a_bigint_as_the_whole_log(
    new_project: ProjectFactory, on_postgres: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    every = loopline.history(project)
    assert every and loopline.history(project, before=10**30, limit=10**30) == every
    paged = cli(capsys, "history", "--before", str(10**30), "-n", str(10**30), "--json", "-C", str(project))
    assert paged.exit_code == 0, paged.stderr
    assert [e["seq"] for e in paged.json()["events"]] == [r.seq for r in every]

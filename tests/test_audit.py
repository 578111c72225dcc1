"""The audit log against someone who can write loopline's database: keyed hashes and signed checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

import loopline
from loopline import audit
from loopline.errors import ConfigError
from loopline.events import Registered, Shared
from loopline.state import Database
from tests.conftest import ProjectFactory
from tests.helpers import cli_process, edit_yaml

KEY = "k" * 16 + "e" * 16 + "y" * 8
OTHER_KEY = "o" * 40


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


def _events(db: Database, count: int, actor: str = "ada") -> None:
    for version in range(1, count + 1):
        kind = Registered if version % 2 else Shared
        audit.record(db, kind(actor=actor, workspace="dev", model="m", version=version, git_commit="c" * 40))


def _rewrite_actor(db: Database, seq: int, actor: str, key: bytes | None, keyed: bool | None = None) -> None:
    """What an attacker with the database does: edit one event, then recompute every hash from there on
    (as plain SHA-256 when they lack the key) and move the head."""
    with db.write() as connection:
        connection.execute(text("UPDATE events SET actor = :a WHERE seq = :s"), {"a": actor, "s": seq})
        if keyed is not None:
            connection.execute(text("UPDATE events SET keyed = :k"), {"k": keyed})
    records = audit.query(db)
    prev = audit.GENESIS
    with db.write() as connection:
        for record in records:
            payload = {
                "event_id": record.event_id,
                "kind": record.kind,
                **record.event.model_dump(mode="json"),
            }
            digest = audit.chain_hash(prev, payload, key)
            connection.execute(
                text("UPDATE events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": digest, "s": record.seq},
            )
            prev = digest
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


def _truncate(db: Database, keep: int) -> None:
    """Delete the newest events and move the head to the last one kept."""
    with db.write() as connection:
        connection.execute(text("DELETE FROM events WHERE seq > :k"), {"k": keep})
        last = connection.execute(text("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")).one()
        connection.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last.seq, "h": last.hash})


def test_without_a_key_whoever_writes_the_database_can_rewrite_history_unnoticed(db: Database) -> None:
    _events(db, 5)
    _rewrite_actor(db, 2, "mallory", key=None)
    assert audit.verify(db).intact  # why the key exists
    _truncate(db, 3)
    assert audit.verify(db).intact


def test_with_a_key_an_edit_with_recomputed_hashes_is_named(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPLINE_AUDIT_KEY", KEY)
    _events(db, 5)
    assert audit.verify(db).intact
    assert all(record.hash for record in audit.query(db))
    _rewrite_actor(db, 2, "mallory", key=None, keyed=True)  # plain hashes where HMACs belong
    problems = [p["problem"] for p in audit.verify(db).problems]
    # Every event whose hash was recomputed is named, the edited one among them.
    assert len(problems) == 5 and all("was edited after it was written" in p for p in problems)
    assert (
        "event #2 (shared) was edited after it was written: its content no longer matches its hash"
        in problems
    )
    # The same with a guessed key.
    _rewrite_actor(db, 2, "mallory", key=OTHER_KEY.encode(), keyed=True)
    assert len(audit.verify(db).problems) == 5


def test_a_log_cut_short_or_rewritten_unkeyed_is_caught_by_the_newest_checkpoint(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPLINE_AUDIT_KEY", KEY)
    _events(db, 6)
    mark = audit.checkpoint(db)
    assert (mark.seq, mark.keyed_from) == (6, 1) and mark.holds(KEY.encode())
    assert audit.verify(db, [mark]).intact
    _truncate(db, 4)
    assert audit.verify(db).intact  # the chain alone cannot tell
    assert [p["problem"] for p in audit.verify(db, [mark]).problems] == [
        f"event #6, the head at the checkpoint of {mark.at}, is gone: the log was cut short or rewritten"
    ]


def test_downgrading_every_event_to_plain_hashes_is_caught_by_the_checkpoint(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPLINE_AUDIT_KEY", KEY)
    _events(db, 4)
    mark = audit.checkpoint(db)
    _events(db, 2)
    _rewrite_actor(db, 3, "mallory", key=None, keyed=False)
    assert audit.verify(db).intact  # a chain of plain hashes holds by itself ...
    problems = [p["problem"] for p in audit.verify(db, [mark]).problems]
    assert any("is not the one the checkpoint" in p for p in problems)  # ... but not against the checkpoint
    assert any("has a plain hash, but the checkpoint" in p for p in problems)


def test_a_forged_checkpoint_a_writer_without_the_key_and_a_short_key_are_named(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPLINE_AUDIT_KEY", KEY)
    _events(db, 3)
    forged = audit.Checkpoint(2, "f" * 64, "2026-11-29T00:00:00+00:00", None).signed(OTHER_KEY.encode())
    problem = audit.verify(db, [forged]).problems[0]["problem"]
    assert problem.startswith("the checkpoint of 2026-11-29T00:00:00+00:00 is not signed with this audit key")
    monkeypatch.delenv("LOOPLINE_AUDIT_KEY")
    _events(db, 1)  # a process without the key appends
    problems = [p["problem"] for p in audit.verify(db).problems]
    assert "event #4 has a plain hash after keyed events from #1" in problems[0]
    assert problems[-1].startswith("3 event(s) are keyed and cannot be checked without the audit key")
    monkeypatch.setenv("LOOPLINE_AUDIT_KEY", "short")
    with pytest.raises(ConfigError, match="has 5 characters; use at least 32"):
        audit.record(db, Registered(actor="a"))


def test_checkpoints_from_the_cli_kept_in_a_folder_and_as_a_ci_artifact(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    env = {"LOOPLINE_AUDIT_KEY_FILE": str(key_file)}
    edit_yaml(project / "loopline.yaml", audit={"checkpoints": "../checkpoints"})
    assert cli_process("up", cwd=project, env=env).exit_code == 0
    for name in ("first", "second"):
        assert cli_process("endpoint", "create", name, cwd=project, env=env).exit_code == 0
    artifact = tmp_path / "artifact.json"
    written = cli_process("audit", "checkpoint", "--to", str(artifact), "--json", cwd=project, env=env)
    assert written.exit_code == 0, written.stderr
    result = json.loads(written.stdout)
    assert Path(result["stored"]).resolve().parent == (project.parent / "checkpoints").resolve()
    assert json.loads(artifact.read_text())["seq"] == result["seq"]
    assert cli_process("audit", "verify", "--checkpoint", str(artifact), cwd=project, env=env).exit_code == 0
    # Someone with the database deletes the newest events: the folder's checkpoint and the artifact see it.
    db = Database(f"sqlite:///{project}/.loopline/state.db")
    _truncate(db, result["seq"] - 1)
    found = cli_process("audit", "verify", "--checkpoint", str(artifact), "--json", cwd=project, env=env)
    assert found.exit_code == 1
    problems = [p["problem"] for p in json.loads(found.stdout)["problems"]]
    assert len(problems) == 2 and all("is gone: the log was cut short" in p for p in problems)
    refused = cli_process("audit", "checkpoint", cwd=project, env=env)
    assert refused.exit_code == 1 and "audit log" in refused.stderr and "altered" in refused.stderr
    no_key = cli_process("audit", "checkpoint", cwd=project, env={"LOOPLINE_AUDIT_KEY_FILE": ""})
    assert no_key.exit_code == 2 and "set LOOPLINE_AUDIT_KEY" in no_key.stderr
    assert loopline.audit_verify  # the SDK has both verbs

"""What a serving process reports about the deployments it loaded: changes at once, a heartbeat, expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from loopline.domain import utcnow
from loopline.serving import stats
from loopline.serving.stats import StatsRecorder
from loopline.state import Database
from loopline.state.schema import serving_paths


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


def rows(db: Database) -> dict[tuple[str, str, str], tuple[str, str, tuple[str, ...]]]:
    with db.read() as connection:
        found = connection.execute(select(serving_paths)).mappings().all()
    return {
        (r["replica"], r["endpoint"], r["deployment"]): (
            r["content_digest"],
            r["path"],
            tuple(r["environment"] or ()),
        )
        for r in found
    }


def test_a_process_reports_changes_says_it_still_serves_and_forgets_on_stopping(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = StatsRecorder(db, "prod")
    me = recorder.replica
    older = ("scikit-learn==1.5.2 (1.9.1 here)",)
    recorder.report_paths(
        {("churn", "blue"): ("sha256:a", "numpy", ()), ("churn", "green"): ("sha256:b", "own", older)}
    )
    assert rows(db) == {
        (me, "churn", "blue"): ("sha256:a", "numpy", ()),
        (me, "churn", "green"): ("sha256:b", "own", older),
    }
    # a new version under the same name, and a deployment no longer served here
    recorder.report_paths({("churn", "green"): ("sha256:c", "treelite", ())})
    assert rows(db) == {(me, "churn", "green"): ("sha256:c", "treelite", ())}

    # Another process's report, silent for longer than PATH_KEEP_SECONDS, goes at the next heartbeat.
    gone = utcnow() - timedelta(seconds=stats.PATH_KEEP_SECONDS + 5)
    with db.write() as connection:
        connection.execute(
            insert(serving_paths).values(
                workspace="prod",
                endpoint="churn",
                deployment="green",
                replica="crashed:1",
                content_digest="sha256:c",
                path="numpy",
                seen_at=gone,
            )
        )
    recorder.report_paths({("churn", "green"): ("sha256:c", "treelite", ())})
    assert ("crashed:1", "churn", "green") in rows(db)  # nothing changed here and no heartbeat is due
    monkeypatch.setattr(stats, "PATH_HEARTBEAT_SECONDS", 0.0)
    recorder.report_paths({("churn", "green"): ("sha256:c", "treelite", ())})
    assert rows(db) == {(me, "churn", "green"): ("sha256:c", "treelite", ())}

    recorder.forget_paths()
    assert rows(db) == {}

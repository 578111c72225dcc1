"""Migrations on SQLite and PostgreSQL: they build exactly the tables the code describes, and an existing
database moves to endpoints per workspace keeping its endpoints, keys, history and releases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from loopline.state import HEAD_REVISION, Database
from loopline.state.schema import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path}/state.db")
    postgres = request.getfixturevalue("postgres")
    return Database(postgres.url(f"migrations_{tmp_path.name}".lower()[:60]))


def test_the_migrations_build_the_tables_the_code_describes(empty: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    empty.upgrade()
    with empty.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


NOW = datetime(2026, 11, 1, tzinfo=UTC)


def insert(connection: Any, table: str, **values: Any) -> None:
    names = ", ".join(values)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES (:{', :'.join(values)})"), values)


def endpoint(connection: Any, id_: int, name: str, workspace: str, **columns: Any) -> None:
    """An endpoint row as the migration being tested knew them."""
    insert(
        connection,
        "endpoints",
        id=id_,
        name=name,
        workspace=workspace,
        auth="key",
        mirror_percent=0,
        created_at=NOW,
        created_by="ada",
        sensitive=False,
        **columns,
    )


def test_an_existing_database_moves_to_endpoints_per_workspace_keeping_everything(empty: Database) -> None:
    empty.upgrade(to="0005")
    with empty.write() as connection:
        for id_, name, workspace in ((1, "churn", "dev"), (2, "proj", "prod")):
            endpoint(connection, id_, name, workspace, generation=3)
            insert(
                connection,
                "endpoint_keys",
                endpoint_id=id_,
                slot="primary",
                key_hash="h" * 64,
                prefix="ll_abc",
                created_at=NOW,
            )
        insert(
            connection,
            "deployments",
            id=1,
            endpoint_id=2,
            name="v1-abc1234",
            model_name="m",
            model_version=1,
            git_commit="a" * 40,
            content_digest="sha256:" + "0" * 64,
            source_uri="x",
            traffic=100,
            created_at=NOW,
            created_by="ada",
        )
        insert(
            connection,
            "releases",
            endpoint="proj",
            deployment="v1-abc1234",
            model="m",
            version=1,
            git_commit="a" * 40,
            kind="release",
            at=NOW,
            actor="ada",
        )
        insert(
            connection,
            "releases",
            endpoint="gone",
            deployment="d",
            model="m",
            version=1,
            git_commit="a" * 40,
            kind="release",
            at=NOW,
            actor="ada",
        )
        insert(
            connection,
            "monitor_samples",
            endpoint="churn",
            deployment="blue",
            at=1.0,
            features='{"x": 1}',
            prediction="1",
        )
        insert(
            connection,
            "batch_endpoints",
            id=1,
            name="nightly",
            workspace="dev",
            created_at=NOW,
            created_by="ada",
        )
    assert empty.upgrade() is True and empty.revision() == HEAD_REVISION
    with empty.read() as connection:
        endpoints = connection.execute(
            text("SELECT name, workspace, generation, strict FROM endpoints ORDER BY id")
        ).all()
        assert [tuple(row) for row in endpoints] == [("churn", "dev", 3, False), ("proj", "prod", 3, False)]
        assert connection.execute(text("SELECT count(*) FROM endpoint_keys")).scalar() == 2
        assert connection.execute(text("SELECT traffic FROM deployments")).scalar() == 100
        releases = connection.execute(text("SELECT endpoint, workspace FROM releases ORDER BY id")).all()
        assert [tuple(row) for row in releases] == [("proj", "prod"), ("gone", "prod")]
        assert connection.execute(text("SELECT workspace FROM monitor_samples")).scalar() == "dev"
    with empty.write() as connection:  # the same name in another workspace is another endpoint
        insert(
            connection,
            "endpoints",
            id=3,
            name="churn",
            workspace="prod",
            auth="key",
            mirror_percent=0,
            generation=1,
            created_at=NOW,
            created_by="ada",
            sensitive=False,
            strict=False,
        )
        insert(
            connection,
            "batch_endpoints",
            id=2,
            name="nightly",
            workspace="prod",
            created_at=NOW,
            created_by="ada",
        )
    with pytest.raises(IntegrityError), empty.write() as connection:
        insert(
            connection,
            "endpoints",
            id=4,
            name="churn",
            workspace="prod",
            auth="key",
            mirror_percent=0,
            generation=1,
            created_at=NOW,
            created_by="ada",
            sensitive=False,
            strict=False,
        )


def test_existing_endpoints_get_the_hash_of_loopline_s_own_key_so_servers_need_no_secret(
    empty: Database,
) -> None:
    from loopline.endpoints import keys

    empty.upgrade(to="0007")
    with empty.write() as connection:
        insert(connection, "instance_secrets", name="endpoint-system-key", value="s" * 64)
        for id_, name, workspace in ((1, "churn", "dev"), (2, "churn", "prod")):
            endpoint(connection, id_, name, workspace, generation=1, strict=False)
    empty.upgrade()
    with empty.read() as connection:
        stored = dict(connection.execute(text("SELECT workspace, system_key_hash FROM endpoints")).all())
    assert stored == {w: keys.hash_key(keys.system_key("s" * 64, w, "churn")) for w in ("dev", "prod")}

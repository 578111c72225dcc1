"""Endpoint names belong to a workspace; endpoints may be strict.

dev, test and prod may each have an endpoint called ``churn``: an online or batch endpoint is unique by
(workspace, name) instead of by name, and what is recorded per endpoint (releases, monitoring samples and
checks, batch jobs) names the workspace too, filled in from the endpoint of that name for existing rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

# SQLite keeps a column's UNIQUE without a name; batch mode names it by this convention so it can be dropped.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_PER_ENDPOINT = ("releases", "monitor_samples", "monitor_checks")


def _scope_names(table: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    old = f"uq_{table}_name" if sqlite else f"{table}_name_key"
    with op.batch_alter_table(table, naming_convention=_NAMING if sqlite else None) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(f"uq_{table}_workspace_name", ["workspace", "name"])


def _add_workspace(table: str, owners: str, key: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("workspace", sa.String(32), nullable=False, server_default="prod"))
    # The workspace of the endpoint of that name (names were unique until now); 'prod' when it is gone.
    op.execute(
        f"UPDATE {table} SET workspace = COALESCE((SELECT {owners}.workspace FROM {owners} "
        f"WHERE {owners}.name = {table}.{key}), 'prod')"
    )


def upgrade() -> None:
    _scope_names("endpoints")
    _scope_names("batch_endpoints")
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("strict", sa.Boolean, nullable=False, server_default=sa.false()))
    for table in _PER_ENDPOINT:
        _add_workspace(table, "endpoints", "endpoint")
    _add_workspace("batch_jobs", "batch_endpoints", "endpoint")
    op.drop_index("ix_releases_endpoint", "releases")
    op.create_index("ix_releases_endpoint", "releases", ["workspace", "endpoint"])
    op.drop_index("ix_monitor_samples_window", "monitor_samples")
    op.create_index(
        "ix_monitor_samples_window", "monitor_samples", ["workspace", "endpoint", "deployment", "at"]
    )
    op.drop_index("ix_monitor_checks_endpoint", "monitor_checks")
    op.create_index("ix_monitor_checks_endpoint", "monitor_checks", ["workspace", "endpoint"])
    op.drop_index("ix_serving_stats_window", "serving_stats")
    op.create_index(
        "ix_serving_stats_window", "serving_stats", ["workspace", "endpoint", "deployment", "second"]
    )


def downgrade() -> None:
    op.drop_index("ix_serving_stats_window", "serving_stats")
    op.create_index("ix_serving_stats_window", "serving_stats", ["endpoint", "deployment", "second"])
    op.drop_index("ix_monitor_checks_endpoint", "monitor_checks")
    op.create_index("ix_monitor_checks_endpoint", "monitor_checks", ["endpoint"])
    op.drop_index("ix_monitor_samples_window", "monitor_samples")
    op.create_index("ix_monitor_samples_window", "monitor_samples", ["endpoint", "deployment", "at"])
    op.drop_index("ix_releases_endpoint", "releases")
    op.create_index("ix_releases_endpoint", "releases", ["endpoint"])
    for table in (*_PER_ENDPOINT, "batch_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("workspace")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("strict")
    for table in ("endpoints", "batch_endpoints"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_workspace_name", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_name", ["name"])

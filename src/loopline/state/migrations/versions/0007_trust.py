"""Provenance of model versions, releases that resume, jobs that can be seen to have died, a keyed audit log.

A model version records how far loopline could verify where it came from (``built-here`` for every
existing version: only the local inner loop made them until now). A release in progress keeps its steps
and the split it started from, so a rerun after a crash continues from the step it reached. A batch job
names the host and process running it and when that process last showed it was alive. An event says
whether its hash is an HMAC with the audit key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("provenance", sa.String(16), nullable=False, server_default="built-here"))
        batch.add_column(sa.Column("provenance_detail", sa.JSON, nullable=True))
    op.create_table(
        "release_progress",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("watch_seconds", sa.Float, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_release_progress_endpoint", "release_progress", ["workspace", "endpoint", "state"])
    with op.batch_alter_table("batch_jobs") as batch:
        batch.add_column(sa.Column("host", sa.String(200), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer, nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("keyed", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("keyed")
    with op.batch_alter_table("batch_jobs") as batch:
        for column in ("heartbeat_at", "pid", "host"):
            batch.drop_column(column)
    op.drop_index("ix_release_progress_endpoint", "release_progress")
    op.drop_table("release_progress")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("provenance_detail")
        batch.drop_column("provenance")

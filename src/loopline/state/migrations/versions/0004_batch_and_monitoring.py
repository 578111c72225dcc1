"""Data assets, batch endpoints and jobs, monitoring samples, reference profiles and checks."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "data_assets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("datastore", sa.String(32), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_data_assets_version"),
    )
    op.create_table(
        "batch_endpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("workspace", sa.String(32), nullable=False),
        sa.Column("default_deployment", sa.String(64), nullable=True),
        sa.Column("previous_default", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "batch_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "endpoint_id", sa.Integer, sa.ForeignKey("batch_endpoints.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("endpoint_id", "name", name="uq_batch_deployments_name"),
    )
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("input_asset", sa.String(100), nullable=False),
        sa.Column("input_version", sa.Integer, nullable=False),
        sa.Column("input_digest", sa.String(80), nullable=False),
        sa.Column("chunk_rows", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("chunks_done", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_batch_jobs_endpoint", "batch_jobs", ["endpoint"])
    op.create_table(
        "monitor_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("prediction", sa.JSON, nullable=True),
    )
    op.create_index("ix_monitor_samples_window", "monitor_samples", ["endpoint", "deployment", "at"])
    op.create_table(
        "reference_profiles",
        sa.Column("content_digest", sa.String(80), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "monitor_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("signals", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_monitor_checks_endpoint", "monitor_checks", ["endpoint"])


def downgrade() -> None:
    for table in (
        "monitor_checks",
        "reference_profiles",
        "monitor_samples",
        "batch_jobs",
        "batch_deployments",
        "batch_endpoints",
        "data_assets",
    ):
        op.drop_table(table)
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("sensitive")

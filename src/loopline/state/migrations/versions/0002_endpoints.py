"""Online endpoints, their keys and deployments, and instance secrets."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("workspace", sa.String(32), nullable=False),
        sa.Column("auth", sa.String(8), nullable=False),
        sa.Column("mirror_deployment", sa.String(64), nullable=True),
        sa.Column("mirror_percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_endpoints_workspace", "endpoints", ["workspace"])
    op.create_table(
        "endpoint_keys",
        sa.Column(
            "endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("slot", sa.String(16), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("traffic", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("endpoint_id", "name", name="uq_deployments_name"),
    )
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in ("instance_secrets", "deployments", "endpoint_keys", "endpoints"):
        op.drop_table(table)

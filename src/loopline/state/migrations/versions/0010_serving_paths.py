"""Serving processes report what answers each deployment they load (a compiled form or the model's own
predict, and why), for ``deployment show`` and the dashboard."""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "serving_paths",
        sa.Column("workspace", sa.String(32), primary_key=True),
        sa.Column("endpoint", sa.String(64), primary_key=True),
        sa.Column("deployment", sa.String(64), primary_key=True),
        sa.Column("replica", sa.String(120), primary_key=True),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("serving_paths")

"""Compute targets: a batch deployment may name the one its jobs run on, and a job records where it ran."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    for table in ("batch_deployments", "batch_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("compute", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in ("batch_jobs", "batch_deployments"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("compute")

"""A batch deployment may also write its jobs' predictions as one CSV file, as Azure ML's append_row does."""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    with op.batch_alter_table("batch_deployments") as batch:
        batch.add_column(sa.Column("output_file", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_deployments") as batch:
        batch.drop_column("output_file")

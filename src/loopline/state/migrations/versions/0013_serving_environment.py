"""Serving processes also report which of a model's requirements their packages do not meet."""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    with op.batch_alter_table("serving_paths") as batch:
        batch.add_column(sa.Column("environment", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("serving_paths") as batch:
        batch.drop_column("environment")

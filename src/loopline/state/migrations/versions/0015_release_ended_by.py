"""A release ended by someone else (a rollback, a split set by hand, the endpoint's deletion) says who
ended it, and how."""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    with op.batch_alter_table("release_progress") as batch:
        batch.add_column(sa.Column("ended_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("ended_how", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_progress") as batch:
        batch.drop_column("ended_how")
        batch.drop_column("ended_by")

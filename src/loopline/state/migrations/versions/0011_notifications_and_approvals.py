"""Webhook delivery (a cursor per webhook into the audit log, and the events kept as failed) and
approvals of releases to prod."""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_cursors",
        sa.Column("webhook", sa.String(100), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_table(
        "notification_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("webhook", sa.String(100), nullable=False),
        sa.Column("seq", sa.Integer(), sa.ForeignKey("events.seq"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", _TIME, nullable=False),
        sa.UniqueConstraint("webhook", "seq"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("report_digest", sa.String(80), nullable=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("run_url", sa.Text(), nullable=True),
    )
    op.create_index("ix_approvals_commit", "approvals", ["git_commit"])


def downgrade() -> None:
    op.drop_index("ix_approvals_commit", "approvals")
    op.drop_table("approvals")
    op.drop_table("notification_failures")
    op.drop_table("notification_cursors")

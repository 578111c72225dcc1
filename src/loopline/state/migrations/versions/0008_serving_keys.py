"""Serving replicas recognise loopline's own endpoint key without the secret it is made from.

Each endpoint stores the hash of the key loopline uses to call it (smoke tests, validation), so a
serving replica needs no read access to ``instance_secrets``: one that could read the secret could make
that key for every endpoint. Existing endpoints get their hash from the secret here.
"""

import hashlib
import hmac

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def _system_key_hash(secret: str, workspace: str, endpoint: str) -> str:
    """As ``loopline.endpoints.keys``: sha256 of ``ll_sys_`` + HMAC(secret, workspace/endpoint)."""
    mac = hmac.new(secret.encode(), f"{workspace}/{endpoint}".encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(f"ll_sys_{mac}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("system_key_hash", sa.String(64), nullable=True))
    bind = op.get_bind()
    secret = bind.execute(
        sa.text("SELECT value FROM instance_secrets WHERE name = 'endpoint-system-key'")
    ).scalar()
    if not secret:
        return
    rows = bind.execute(sa.text("SELECT id, workspace, name FROM endpoints")).all()
    for row in rows:
        bind.execute(
            sa.text("UPDATE endpoints SET system_key_hash = :hash WHERE id = :id"),
            {"hash": _system_key_hash(str(secret), row.workspace, row.name), "id": row.id},
        )


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("system_key_hash")

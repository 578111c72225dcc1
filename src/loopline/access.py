"""Users, roles per workspace, and API tokens: who may call the control plane, and for what.

Roles are ordered: ``reader`` < ``developer`` < ``releaser`` < ``admin``; a role includes every role
below it. A grant names one workspace, the shared registry, or ``*`` (every workspace). Tokens look like
``ll_<id>_<secret>``; only the SHA-256 of the whole token is stored, so a token is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import delete, insert, select, update

from loopline.domain import parse_duration, utcnow
from loopline.errors import Forbidden, InvalidReference, NotFound, Unauthenticated, UsageError
from loopline.events import RoleGranted, TokenCreated, TokenRevoked, UserAdded
from loopline.state import Database, as_utc
from loopline.state.schema import grants, tokens, users

__all__ = [
    "ALL_WORKSPACES",
    "Principal",
    "Role",
    "TokenInfo",
    "UserInfo",
    "add_user",
    "authenticate",
    "create_token",
    "grant",
    "list_tokens",
    "list_users",
    "revoke_token",
]

ALL_WORKSPACES = "*"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_TOKEN = re.compile(r"^ll_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Role(IntEnum):
    """What a user may do on a workspace; each role includes the ones below it."""

    READER = 1
    DEVELOPER = 2
    RELEASER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """The role's name as users type it."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value``, or a usage error listing the roles."""
        try:
            return cls[value.upper()]
        except KeyError:
            raise UsageError(
                f"role '{value}' does not exist; use one of {', '.join(r.label for r in cls)}"
            ) from None


@dataclass(frozen=True)
class UserInfo:
    """A user and their roles by workspace (``*`` for every workspace)."""

    name: str
    roles: dict[str, str]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"name": self.name, "roles": self.roles, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class TokenInfo:
    """One token's metadata; ``secret`` is set only in the answer to the request that created it."""

    id: str
    user: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    secret: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (with the secret only when this is the creating answer)."""
        data: dict[str, Any] = {
            "id": self.id,
            "user": self.user,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }
        if self.secret is not None:
            data["token"] = self.secret
        return data


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user, their roles, and the token they used."""

    user: str
    roles: dict[str, Role]
    token_id: str

    def role_on(self, workspace: str) -> Role | None:
        """The caller's highest role on ``workspace`` (a ``*`` grant counts everywhere)."""
        found = [r for w, r in self.roles.items() if w in (workspace, ALL_WORKSPACES)]
        return max(found) if found else None

    def require(self, role: Role, workspace: str, operation: str) -> None:
        """Refuse unless the caller holds ``role`` (or above) on ``workspace``."""
        held = self.role_on(workspace)
        if held is None or held < role:
            scope = "every workspace (*)" if workspace == ALL_WORKSPACES else f"workspace '{workspace}'"
            raise Forbidden(user=self.user, operation=operation, role=role.label, scope=scope)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidReference(
            f"user name '{name}' is not valid; use up to 100 letters, digits, '.', '_', '@' or '-'"
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _require_user(connection: Any, name: str) -> None:
    if connection.execute(select(users.c.name).where(users.c.name == name)).first() is None:
        raise NotFound(f"user '{name}' does not exist; add it with `loopline user add {name}`")


def add_user(db: Database, name: str, actor: str) -> tuple[UserInfo, bool]:
    """Add a user (with no roles); return it and whether it was new."""
    from loopline import audit

    _check_name(name)
    with db.write() as connection:
        row = connection.execute(select(users).where(users.c.name == name)).first()
        if row is not None:
            return _user(connection, row), False
        now = utcnow()
        connection.execute(insert(users).values(name=name, created_at=now, created_by=actor))
        audit.append(connection, UserAdded(actor=actor, target=name))
        return UserInfo(name=name, roles={}, created_at=now), True


def grant(db: Database, name: str, role: str | None, workspace: str, actor: str) -> UserInfo:
    """Give ``name`` a role on ``workspace`` (``*`` for all), or take it away when ``role`` is None."""
    from loopline import audit

    parsed = Role.parse(role) if role is not None else None
    with db.write() as connection:
        _require_user(connection, name)
        where = (grants.c.user == name) & (grants.c.workspace == workspace)
        connection.execute(delete(grants).where(where))
        if parsed is not None:
            connection.execute(insert(grants).values(user=name, workspace=workspace, role=parsed.label))
        audit.append(
            connection,
            RoleGranted(
                actor=actor,
                target=name,
                workspace=None if workspace == ALL_WORKSPACES else workspace,
                details={"role": parsed.label if parsed else None, "scope": workspace},
            ),
        )
        row = connection.execute(select(users).where(users.c.name == name)).one()
        return _user(connection, row)


def _user(connection: Any, row: Any) -> UserInfo:
    held = connection.execute(select(grants.c.workspace, grants.c.role).where(grants.c.user == row.name))
    return UserInfo(
        name=row.name,
        roles={g.workspace: g.role for g in held},
        created_at=as_utc(row.created_at),
    )


def list_users(db: Database) -> list[UserInfo]:
    """Every user with their roles, by name."""
    with db.read() as connection:
        return [_user(connection, row) for row in connection.execute(select(users).order_by(users.c.name))]


def create_token(db: Database, user: str, expires: str | None, actor: str) -> TokenInfo:
    """A new token for ``user``; its secret is in the answer and nowhere else."""
    from loopline import audit

    lifetime = parse_duration(expires, "--expires") if expires else None
    token_id = secrets.token_hex(6)
    secret = f"ll_{token_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    expires_at = now + lifetime if lifetime else None
    with db.write() as connection:
        _require_user(connection, user)
        connection.execute(
            insert(tokens).values(
                id=token_id, user=user, secret_hash=_digest(secret), created_at=now, expires_at=expires_at
            )
        )
        audit.append(
            connection,
            TokenCreated(
                actor=actor,
                target=user,
                details={"token_id": token_id, "expires_at": expires_at.isoformat() if expires_at else None},
            ),
        )
    return TokenInfo(id=token_id, user=user, created_at=now, expires_at=expires_at, secret=secret)


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=row.user,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at) if row.expires_at else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


def list_tokens(db: Database, user: str | None = None) -> list[TokenInfo]:
    """Every token's metadata (never a secret), newest first."""
    query = select(tokens).order_by(tokens.c.created_at.desc())
    if user is not None:
        query = query.where(tokens.c.user == user)
    with db.read() as connection:
        return [_token(row) for row in connection.execute(query)]


def revoke_token(db: Database, token_id: str, actor: str) -> TokenInfo:
    """Revoke a token by its id (the ``ll_<id>_`` part); revoking twice changes nothing."""
    from loopline import audit

    with db.write() as connection:
        row = connection.execute(select(tokens).where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token '{token_id}' does not exist; `loopline token list` shows every token id")
        if row.revoked_at is None:
            connection.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=utcnow()))
            audit.append(
                connection, TokenRevoked(actor=actor, target=row.user, details={"token_id": token_id})
            )
        row = connection.execute(select(tokens).where(tokens.c.id == token_id)).one()
        return _token(row)


def authenticate(db: Database, token: str | None) -> Principal:
    """The caller a bearer token belongs to; refuses missing, malformed, unknown, expired or revoked ones."""
    if not token:
        raise Unauthenticated(problem="no token was sent")
    if not _TOKEN.match(token):
        raise Unauthenticated(problem="the token is malformed")
    with db.read() as connection:
        row = connection.execute(select(tokens).where(tokens.c.secret_hash == _digest(token))).first()
        if row is None:
            raise Unauthenticated(problem="the token is not known")
        if row.revoked_at is not None:
            raise Unauthenticated(problem=f"token {row.id} was revoked")
        if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
            raise Unauthenticated(
                problem=f"token {row.id} expired at {as_utc(row.expires_at):%Y-%m-%d %H:%M} UTC"
            )
        held = connection.execute(select(grants.c.workspace, grants.c.role).where(grants.c.user == row.user))
        roles = {g.workspace: Role.parse(g.role) for g in held}
    return Principal(user=row.user, roles=roles, token_id=row.id)

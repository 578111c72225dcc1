"""Endpoint keys: random, shown once, stored as sha256 hashes; and loopline's own key for its calls."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["KEY_PREFIX", "SLOTS", "hash_key", "new_key", "public_prefix", "served_mark", "system_key"]

KEY_PREFIX = "ll_"
SLOTS = ("primary", "secondary")


def new_key() -> str:
    """A fresh endpoint key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def public_prefix(key: str) -> str:
    """The start of a key, enough to tell keys apart in listings, useless to an attacker."""
    return key[: len(KEY_PREFIX) + 6]


def system_key(secret: str, workspace: str, endpoint: str) -> str:
    """The key loopline itself uses to call ``workspace``'s ``endpoint`` (smoke tests, validation, the demo).

    Derived from the instance's secret in loopline's database, so only processes that can read that
    database can compute it, and it never needs to be stored or shown.
    """
    message = f"{workspace}/{endpoint}".encode()
    return KEY_PREFIX + "sys_" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def served_mark(system_hash: str) -> str:
    """What a server says on ``/healthz`` for an endpoint it serves: derived from the hash of loopline's own
    key for that endpoint, so loopline tells its server from another project's on the same address, and
    the mark tells nobody else anything."""
    return hashlib.sha256(b"loopline-serves:" + system_hash.encode()).hexdigest()[:16]

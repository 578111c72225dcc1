"""GitHub Actions OIDC tokens as attestations: this run is the inner-loop workflow of this repository at
this commit.

In a job with ``permissions: id-token: write``, GitHub hands the runner a URL and a bearer token with
which it asks GitHub for a signed JWT (:func:`request_token`). loopline checks that JWT against the
issuer's published keys (its JWKS, found through ``/.well-known/openid-configuration``), its audience,
issuer and expiry, then the claims: ``repository`` is this project's, ``sha`` is the commit, and
``job_workflow_ref`` is the configured inner-loop workflow of that repository (:func:`verify`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from loopline.errors import Refused, StoreUnavailable, UsageError

__all__ = ["Attestation", "AttestationRefused", "request_token", "verify"]

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
MAX_TOKEN = 8192
_clients: dict[str, Any] = {}
_lock = threading.Lock()


class AttestationRefused(Refused):
    """An attestation token that does not hold."""

    error_code = "ATTESTATION_REFUSED"


@dataclass(frozen=True)
class Attestation:
    """What a verified token says about the run that carried it."""

    repository: str
    commit: str
    workflow: str
    run_id: str
    actor: str

    def to_dict(self) -> dict[str, str]:
        """The provenance detail recorded with the version."""
        return {
            "repository": self.repository,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "actor": self.actor,
        }


def request_token(audience: str) -> str | None:
    """This GitHub Actions job's OIDC token for ``audience``; None outside Actions (or without
    ``id-token: write``)."""
    url, bearer = os.environ.get(REQUEST_URL), os.environ.get(REQUEST_TOKEN)
    if not url or not bearer:
        return None
    try:
        answer = httpx.get(
            url, params={"audience": audience}, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
        )
        answer.raise_for_status()
        return str(answer.json()["value"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise StoreUnavailable(
            what="GitHub's OIDC token service", where=url.split("?")[0], reason=str(exc)[:200]
        ) from None


def _keys(issuer: str) -> Any:
    """The issuer's key set client (cached: it refetches keys it does not know, as keys rotate)."""
    import jwt

    with _lock:
        if issuer not in _clients:
            try:
                discovery = httpx.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=30)
                discovery.raise_for_status()
                jwks_uri = str(discovery.json()["jwks_uri"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise StoreUnavailable(what="the OIDC issuer", where=issuer, reason=str(exc)[:200]) from None
            _clients[issuer] = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600, timeout=30)
        return _clients[issuer]


def verify(
    token: str, *, issuer: str, audience: str, repository: str, workflow: str, commit: str
) -> Attestation:
    """The attestation ``token`` makes for ``commit``; AttestationRefused naming the first check it fails."""
    import jwt

    if len(token) > MAX_TOKEN:
        raise UsageError(
            f"the attestation token is over {MAX_TOKEN} characters; send the token GitHub issued"
        )
    try:
        key = _keys(issuer).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sha", "repository", "job_workflow_ref"]},
            leeway=30,
        )
    except jwt.PyJWKClientConnectionError as exc:
        raise StoreUnavailable(what="the OIDC issuer's keys", where=issuer, reason=str(exc)[:200]) from None
    except jwt.PyJWTError as exc:
        raise AttestationRefused(f"the attestation token is not valid: {str(exc)[:200]}") from None
    expected_ref = f"{repository}/{workflow.lstrip('/')}@"
    checks = (
        ("repository", str(claims["repository"]).lower() == repository.lower(), repository),
        ("sha", claims["sha"] == commit, commit[:12]),
        ("job_workflow_ref", str(claims["job_workflow_ref"]).startswith(expected_ref), f"{expected_ref}..."),
    )
    for claim, holds, wanted in checks:
        if not holds:
            raise AttestationRefused(
                f"the attestation token's {claim} is {str(claims[claim])[:120]!r}, not {wanted!r}: it does "
                "not attest this run"
            )
    return Attestation(
        repository=str(claims["repository"]),
        commit=commit,
        workflow=str(claims["job_workflow_ref"]),
        run_id=str(claims.get("run_id", "")),
        actor=str(claims.get("actor", "")),
    )

"""A local OpenID Connect issuer standing in for GitHub Actions' (token.actions.githubusercontent.com).

GitHub's servers cannot be reached from here, so this is the one boundary the tests replace: an HTTP
server on 127.0.0.1 with its own RSA keys that publishes ``/.well-known/openid-configuration`` and a JWKS
as GitHub's issuer does, and answers ``/token?audience=...`` as a runner's ``ACTIONS_ID_TOKEN_REQUEST_URL``
does, with a JWT carrying GitHub's claims. loopline's verification runs unchanged against it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REQUEST_TOKEN = "runner-request-token"


def new_key() -> Any:
    """A fresh RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    """The issuer's address, its signing key, and the claims the next ``/token`` answer carries."""

    url: str
    key: Any = field(default_factory=new_key)
    claims: dict[str, Any] = field(default_factory=dict)

    def token(self, audience: str = "loopline", key: Any = None, **claims: Any) -> str:
        """A token as GitHub would issue it for this job (``claims`` override the job's)."""
        now = int(time.time())
        body = {"iss": self.url, "aud": audience, "iat": now, "nbf": now, "exp": now + 300, **self.claims}
        body.update(claims)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "test-key"})

    def runner_env(self) -> dict[str, str]:
        """The variables GitHub sets in a job with ``permissions: id-token: write``."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        }


def job_claims(repository: str, commit: str, workflow: str = "inner-loop.yml") -> dict[str, Any]:
    """The claims of a GitHub Actions job of ``repository`` at ``commit`` running ``workflow``."""
    return {
        "sub": f"repo:{repository}:ref:refs/heads/main",
        "repository": repository,
        "sha": commit,
        "ref": "refs/heads/main",
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/heads/main",
        "run_id": "4242",
        "actor": "octocat",
    }


@contextmanager
def oidc_issuer() -> Iterator[Issuer]:
    """Serve an issuer on 127.0.0.1 for the duration of the block."""
    holder: dict[str, Issuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            issuer = holder["issuer"]
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
            elif parts.path == "/jwks":
                public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                self._send(200, {"keys": [{**public, "kid": "test-key", "use": "sig", "alg": "RS256"}]})
            elif parts.path == "/token":
                if self.headers.get("Authorization") != f"Bearer {REQUEST_TOKEN}":
                    self._send(401, {"message": "bad request token"})
                    return
                audience = parse_qs(parts.query).get("audience", ["loopline"])[0]
                self._send(200, {"value": issuer.token(audience)})
            else:
                self._send(404, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["issuer"] = Issuer(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()
        server.server_close()

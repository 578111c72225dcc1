"""The ASGI shell around the scoring core: read the body (within the limit), answer, run the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from loopline.serving.core import JSON, ScoringCore

__all__ = ["ScoringApp"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ScoringApp:
    """An ASGI application: HTTP requests go to the core, lifespan events to ``startup``/``shutdown``."""

    def __init__(
        self,
        core: ScoringCore,
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.core = core
        self.max_body_bytes = max_body_bytes
        self.startup = startup
        self.shutdown = shutdown
        self._too_large = orjson.dumps(
            {
                "error_code": "TOO_LARGE",
                "message": f"the request body is larger than the limit of {max_body_bytes} bytes "
                "(serving.max_body_bytes in loopline.yaml)",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(send)
            return
        message = await receive()
        if message.get("more_body") or message["type"] != "http.request":  # the body comes in parts
            body = await self._body(receive, message)
        else:
            body = message.get("body", b"")
            if len(body) > self.max_body_bytes:
                body = None
        if body is None:
            await self._reject(send)
            return
        response = await self.core.handle(scope["method"], scope["path"], headers, body)
        length = (b"content-length", b"%d" % len(response.body))
        await send(
            {"type": "http.response.start", "status": response.status, "headers": [*response.headers, length]}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _body(self, receive: Receive, message: dict[str, Any]) -> bytes | None:
        """The body from its first ``message`` on; None when it is over the limit (or the client left)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()

    async def _reject(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 413, "headers": [*JSON, (b"connection", b"close")]}
        )
        await send({"type": "http.response.body", "body": self._too_large})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

"""Connections one client cannot use to starve the others.

uvicorn times out idle keep-alive connections, but not a request whose headers trickle in byte by byte
(each byte resets its keep-alive timer), and it accepts connections until the process runs out of file
descriptors. :func:`guarded` wraps uvicorn's HTTP protocol class so that:

- a request's headers must arrive within ``header_timeout`` seconds of its first byte (or of the
  connection), else the connection gets 408 and is closed;
- a worker holds at most ``max_connections``; a new connection over the cap takes the place of the idle one
  (no request under way: new, kept alive, or still sending its headers) that has waited longest, and is
  refused with 503 when every connection is busy with a request.

:func:`raise_open_files` lifts the process's open-file limit to its hard limit, so the cap, not the
operating system's default of 1,024, decides when connections are refused.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from typing import Any

__all__ = ["guarded", "http_protocol", "raise_open_files"]

log = logging.getLogger("loopline.serve")

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
SPARE_FILES = 64
"""File descriptors a worker keeps for itself (model files, the database, logs) beyond its connections."""


def raise_open_files() -> int:
    """Raise the soft open-file limit to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """The connections a worker may hold: ``wanted``, within what its open-file limit leaves."""
    return max(1, min(wanted, open_files - SPARE_FILES))


class _Guard:
    """Mixed in before uvicorn's protocol class by :func:`guarded`, which sets the class attributes."""

    header_timeout: float
    max_connections: int
    idle: OrderedDict[Any, None]  # this worker's connections with no request under way, oldest first
    _deadline: asyncio.TimerHandle | None = None
    _partial = False  # some bytes of a request arrived, not yet all its headers
    # uvicorn's protocol provides these
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.max_connections:
            if not self.idle:
                log.warning(
                    "refused a connection: all %d are busy (serving.max_connections)", len(self.connections)
                )
                self._close(BUSY)
                return
            next(iter(self.idle))._expire()
        self._wait(deadline=True)

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:
            self._busy()  # a request's headers arrived
        elif self._between_requests():
            self._partial = True
            if self._deadline is None:
                self._wait(deadline=True)  # the next request on a kept-alive connection began

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self._between_requests():
            self._wait(deadline=False)  # kept alive: uvicorn's keep-alive timeout applies

    def connection_lost(self, exc: Exception | None) -> None:
        self._busy()
        super().connection_lost(exc)  # type: ignore[misc]

    def _between_requests(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _wait(self, deadline: bool) -> None:
        if deadline:
            self._deadline = self.loop.call_later(self.header_timeout, self._expire)
        self.idle[self] = None

    def _busy(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._partial = False
        self.idle.pop(self, None)

    def _expire(self) -> None:
        """Close an idle connection: with 408 when part of a request had come."""
        partial = self._partial
        self._busy()
        self._close(TIMED_OUT if partial else b"")

    def _close(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()


def guarded(protocol: type[Any], header_timeout: float, max_connections: int) -> type[Any]:
    """``protocol`` (uvicorn's h11 or httptools class) with a header deadline and a connection cap."""
    attributes = {"header_timeout": header_timeout, "max_connections": max_connections, "idle": OrderedDict()}
    return type(f"Guarded{protocol.__name__}", (_Guard, protocol), attributes)


def http_protocol(header_timeout: float = 10, max_connections: int = 4096) -> type[Any]:
    """uvicorn's fastest HTTP protocol here (httptools, else h11), guarded, with the open-file limit raised
    so that ``max_connections`` fit."""
    protocol: type[Any]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as protocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as protocol
    return guarded(protocol, header_timeout, connection_cap(max_connections, raise_open_files()))

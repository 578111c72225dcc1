"""Sockets and HTTP clients: a listening socket as every loopline server wants it, a free port for a child
server, and httpx clients that share one TLS configuration per process."""

from __future__ import annotations

import errno
import functools
import signal
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from loopline.errors import LooplineError, UsageError

if TYPE_CHECKING:
    import ssl

    import httpx
    from starlette.requests import Request

__all__ = ["bind", "bounded_stream", "foreign_host", "free_port", "http_client", "http_request", "read_body"]


def bind(host: str, port: int, reuse_port: bool, taken: str = "choose another --port") -> socket.socket:
    """A listening TCP socket with TCP_NODELAY (inherited by accepted connections); ``taken`` says what to
    do when another process holds the port."""
    if not 0 <= port <= 65535:
        raise UsageError(f"{port} is not a TCP port; choose a --port from 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # a port in use or reserved, else an address this machine does not have or cannot resolve
        fix = taken if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "check --host"
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; {fix}") from None
    sock.listen(2048)
    return sock


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificates httpx would trust (its default bundle, or SSL_CERT_FILE / SSL_CERT_DIR), loaded once:
    loading them took about 25 ms for every client, even one that only ever calls http://127.0.0.1."""
    import httpx

    return httpx.create_ssl_context()


def http_client(**options: Any) -> httpx.Client:
    """An ``httpx.Client`` with this process's shared TLS configuration (``options`` as for httpx)."""
    import httpx  # only where something is sent: most commands never do

    return httpx.Client(verify=_tls(), **options)


def http_request(method: str, url: str, **options: Any) -> httpx.Response:
    """One request, as ``httpx.request`` sends it, without loading the certificates again."""
    with http_client() as client:
        return client.request(method, url, **options)


def foreign_host(host_header: str) -> str | None:
    """The host name of a request's ``Host`` header when it names no address of a machine (an IP
    address, or ``localhost``): a page of another site that had its name resolve to 127.0.0.1 (DNS
    rebinding) asks with its own name, and would otherwise be a page of this server's origin."""
    import ipaddress

    given = host_header
    host = given[1 : given.find("]")] if given.startswith("[") else given.rsplit(":", 1)[0]
    if host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    return None


async def bounded_stream(request: Request, limit: int, too_large: LooplineError) -> AsyncIterator[bytes]:
    """The request's body a chunk at a time, refused (``too_large``) as soon as it is known to be, or
    streams past, ``limit`` bytes: what a caller sends is never read further than that."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        yield chunk


async def read_body(request: Request, limit: int, too_large: LooplineError) -> bytes:
    """The request's body, at most ``limit`` bytes (see ``bounded_stream``)."""
    return b"".join([chunk async for chunk in bounded_stream(request, limit, too_large)])


def serve_until_stopped(server: Any, sock: socket.socket) -> None:
    """Run the uvicorn ``server`` on ``sock`` until SIGTERM or SIGINT, then return: a stop is how a server
    ends (Kubernetes, Docker and systemd send SIGTERM), not an error. uvicorn shuts down gracefully on the
    signal and raises it again afterwards; that second one is let go. One before uvicorn listens (the
    models still loading) does what it did before."""

    def stop(signum: int, frame: Any) -> None:
        if server.should_exit:
            return
        before = previous[signal.Signals(signum)]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, stop)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

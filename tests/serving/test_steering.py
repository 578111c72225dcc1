"""Steering new connections among SO_REUSEPORT sockets to the live ones, on the real kernel."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from loopline.serving.server import bind
from loopline.serving.steering import steer

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


@pytest.fixture
def group() -> Iterator[list[socket.socket]]:
    first = bind("127.0.0.1", 0, reuse_port=True)
    port = first.getsockname()[1]
    sockets = [first, *(bind("127.0.0.1", port, reuse_port=True) for _ in range(2))]
    yield sockets
    for sock in sockets:
        sock.close()


def spread(sockets: list[socket.socket], connections: int) -> list[int]:
    """How many of ``connections`` new connections each socket's queue received."""
    port = sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    time.sleep(0.1)
    counts = []
    for sock in sockets:
        sock.setblocking(False)
        count = 0
        while True:
            try:
                accepted, _ = sock.accept()
            except BlockingIOError:
                break
            accepted.close()
            count += 1
        counts.append(count)
    for client in clients:
        client.close()
    return counts


def test_connections_go_only_to_the_live_sockets_and_evenly(group: list[socket.socket]) -> None:
    assert steer(group[0], [0, 2])
    counts = spread(group, 200)
    assert counts[1] == 0
    assert sum(counts) == 200
    assert min(counts[0], counts[2]) > 50  # random choice between two: far from all on one


def test_steering_follows_changes_and_can_be_removed(group: list[socket.socket]) -> None:
    assert steer(group[0], [1])
    assert spread(group, 30) == [0, 30, 0]
    assert not steer(group[0], [])  # no live socket: the kernel's own hashing over all of them again
    assert all(count > 0 for count in spread(group, 200))

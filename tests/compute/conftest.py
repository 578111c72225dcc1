"""A real Ray cluster on 127.0.0.1 (one head node, two CPUs), started once for the compute tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ray_cluster import local_ray_cluster


@dataclass(frozen=True)
class Cluster:
    """Where the tests reach the cluster."""

    address: str  # the Jobs API (the dashboard)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    """One cluster for the module that uses it (test_ray.py), stopped after it: an idle Ray head keeps
    using the machine's two cores. Its folder is short: Ray's Unix sockets are in it, and a socket's path
    has at most 107 bytes (a pytest-xdist process's temporary folder is too deep for some)."""
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    try:
        with local_ray_cluster(folder) as address:
            yield Cluster(address)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

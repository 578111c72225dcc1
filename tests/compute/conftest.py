"""A real Ray cluster on 127.0.0.1 (one head node, two CPUs), started once for the compute tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ray_cluster import local_ray_cluster


@dataclass(frozen=True)
class Cluster:
    """Where the tests reach the cluster."""

    address: str  # the Jobs API (the dashboard)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with local_ray_cluster(tmp_path_factory.mktemp("ray")) as address:
        yield Cluster(address)

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


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module that uses it (test_ray.py), stopped after it: an idle Ray head keeps
    using the machine's two cores, which the timing tests after it measure with."""
    with local_ray_cluster(tmp_path_factory.mktemp("ray")) as address:
        yield Cluster(address)

"""Fuzzing the scoring routes of a real server: no client input may produce a 5xx or stop the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopline
from tests.helpers import input_example
from tests.servers import Server

pytestmark = pytest.mark.slow

EXAMPLES = 400

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def fuzzed(served_project: Path) -> Iterator[tuple[Server, list[str]]]:
    loopline.create_endpoint("fuzz", "dev", auth="none", project=served_project)
    loopline.create_deployment("fuzz", "blue", version=1, check=False, project=served_project)
    loopline.create_endpoint("fuzz-pandas", "dev", auth="none", project=served_project)
    loopline.create_deployment(
        "fuzz-pandas", "only", model="fragile", version=1, check=False, project=served_project
    )
    columns, _ = input_example(served_project)
    with Server(served_project) as server:
        yield server, columns


def bodies(columns: list[str]) -> st.SearchStrategy[bytes]:
    """Raw junk, arbitrary JSON, and near-valid requests with wrong columns, rows and types."""
    names = st.one_of(
        st.sampled_from([*columns, "x", "name", "count"]), st.text(max_size=8), st.integers(0, 40)
    )
    table = st.fixed_dictionaries(
        {
            "columns": st.lists(names, max_size=32),
            "data": st.lists(st.lists(scalars, max_size=32), max_size=4),
        }
    )
    near = st.one_of(
        st.builds(lambda t: {"input_data": t}, table),
        st.builds(lambda t: {"dataframe_split": t}, table),
        st.builds(
            lambda r: {"dataframe_records": r},
            st.lists(st.dictionaries(names, scalars, max_size=32), max_size=3),
        ),
        st.builds(lambda v: {"instances": v}, values),
        st.builds(lambda v: {"inputs": v}, values),
    )
    return st.one_of(
        st.binary(max_size=200),
        values.map(lambda v: json.dumps(v).encode()),
        near.map(lambda v: json.dumps(v, default=str).encode()),
    )


def test_no_client_input_gives_a_5xx(fuzzed: tuple[Server, list[str]]) -> None:
    server, columns = fuzzed
    tried = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            body=bodies(columns),
            route=st.sampled_from(["score", "invocations"]),
            endpoint=st.sampled_from(["fuzz", "fuzz-pandas", "nope"]),
            content_type=st.sampled_from(
                ["application/json", "text/csv", "text/plain", "", "application/json; charset=utf-8"]
            ),
        )
        def check(body: bytes, route: str, endpoint: str, content_type: str) -> None:
            nonlocal tried
            tried += 1
            answer = client.post(
                f"/endpoints/{endpoint}/{route}",
                content=body,
                headers={"content-type": content_type} if content_type else {},
            )
            # Only the fragile model may fail (500 MODEL_ERROR) on input that passed every check.
            model_failed = endpoint == "fuzz-pandas" and answer.json().get("error_code") == "MODEL_ERROR"
            assert answer.status_code < 500 or model_failed, (answer.status_code, answer.text[:300])
            if answer.status_code >= 400:
                assert set(answer.json()) == {"error_code", "message"}

        check()
        assert client.get("/healthz").status_code == 200
    print(f"\nfuzzed {tried} requests; the server is alive")
    assert tried >= EXAMPLES


WELL_FORMED = 200
extreme_numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False))


def well_formed(columns: list[str]) -> st.SearchStrategy[tuple[str, str, dict[str, object]]]:
    """Requests of the right shape and types for each model, with values from the extremes of each type."""
    numeric_rows = st.lists(
        st.lists(extreme_numbers, min_size=len(columns), max_size=len(columns)), min_size=1
    )
    fragile_rows = st.lists(
        st.fixed_dictionaries({"x": extreme_numbers, "name": st.text(max_size=50), "count": extreme_numbers}),
        min_size=1,
        max_size=5,
    )
    return st.one_of(
        numeric_rows.map(lambda rows: ("fuzz", "score", {"input_data": {"columns": columns, "data": rows}})),
        numeric_rows.map(
            lambda rows: ("fuzz", "invocations", {"dataframe_split": {"columns": columns, "data": rows}})
        ),
        fragile_rows.map(lambda rows: ("fuzz-pandas", "invocations", {"dataframe_records": rows})),
    )


def test_well_formed_requests_with_extreme_values_never_give_a_5xx(fuzzed: tuple[Server, list[str]]) -> None:
    server, columns = fuzzed
    tried = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:

        @settings(max_examples=WELL_FORMED, deadline=None, suppress_health_check=list(HealthCheck))
        @given(request=well_formed(columns))
        def check(request: tuple[str, str, dict[str, object]]) -> None:
            nonlocal tried
            tried += 1
            endpoint, route, body = request
            answer = client.post(f"/endpoints/{endpoint}/{route}", json=body)
            model_failed = endpoint == "fuzz-pandas" and answer.json().get("error_code") == "MODEL_ERROR"
            assert answer.status_code < 500 or model_failed, (answer.status_code, answer.text[:300])

        check()
        assert client.get("/healthz").status_code == 200
    print(f"\nsent {tried} well-formed requests with extreme values; the server is alive")
    assert tried >= WELL_FORMED

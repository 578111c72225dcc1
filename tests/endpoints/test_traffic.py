"""Traffic rules: sums, unknown deployments, the mirror's limits, and proportional shares."""

from __future__ import annotations

import pytest

from loopline.endpoints.traffic import check_mirror, check_traffic, parse_assignments, with_share
from loopline.errors import Refused, UsageError


def test_assignments_parse_and_refuse_bad_forms() -> None:
    assert parse_assignments(["blue=90", "green=10"]) == {"blue": 90, "green": 10}
    assert parse_assignments(["blue=90%", "green=10%"]) == {"blue": 90, "green": 10}  # as people write shares
    for bad in (["blue"], ["blue=x"], ["=10"], ["blue=-1"], ["blue=%"], ["blue=9%0"]):
        with pytest.raises(UsageError, match="DEPLOYMENT=PERCENT"):
            parse_assignments(bad)
    with pytest.raises(UsageError, match="twice"):
        parse_assignments(["a=50", "a=50"])


def test_traffic_must_sum_to_100_and_shows_the_sum() -> None:
    assert check_traffic(["blue", "green"], {"blue": 100}) == {"blue": 100, "green": 0}
    with pytest.raises(Refused, match=r"traffic must sum to 100%, but blue 90 \+ green 20 = 110%"):
        check_traffic(["blue", "green"], {"blue": 90, "green": 20})
    with pytest.raises(Refused, match="nothing = 0%"):
        check_traffic(["blue"], {})
    assert check_traffic([], {}) == {}


def test_traffic_to_an_unknown_deployment_names_the_known_ones() -> None:
    with pytest.raises(Refused, match=r"no deployment named 'red' \(deployments: blue, green\)"):
        check_traffic(["blue", "green"], {"red": 100})


def test_mirror_is_capped_at_50_and_goes_only_to_an_idle_deployment() -> None:
    traffic = {"blue": 100, "green": 0}
    assert check_mirror(traffic, {"green": 10}) == {"green": 10}
    assert check_mirror(traffic, {"green": 0}) == {}
    with pytest.raises(Refused, match="at most 50%"):
        check_mirror(traffic, {"green": 60})
    with pytest.raises(Refused, match="only to a deployment with none"):
        check_mirror(traffic, {"blue": 10})


def test_a_new_share_scales_the_others_and_keeps_100() -> None:
    assert with_share({"blue": 100, "green": 0}, "green", 10) == {"blue": 90, "green": 10}
    assert with_share({"a": 50, "b": 50, "c": 0}, "c", 33) == {"a": 34, "b": 33, "c": 33}
    assert sum(with_share({"a": 33, "b": 33, "c": 34, "d": 0}, "d", 25).values()) == 100
    with pytest.raises(Refused, match="only deployment"):
        with_share({"solo": 0}, "solo", 50)

"""The sampler's token bucket: the hot path only counts tokens; the serving loop refills them."""

from __future__ import annotations

import types

import pytest

from loopline.monitoring import sampling
from loopline.monitoring.sampling import Sampler


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sampler's clock, moved by hand (only the sampler module sees it)."""
    now = [100.0]
    monkeypatch.setattr(
        sampling, "time", types.SimpleNamespace(monotonic=lambda: now[0], time=lambda: now[0])
    )
    return now


def taken(sampler: Sampler, tries: int = 100) -> int:
    return sum(sampler.wants() for _ in range(tries))


def test_a_full_bucket_lets_per_second_requests_through_then_none_until_refilled(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=4, keep=100)  # type: ignore[arg-type]
    assert taken(sampler) == 4
    assert taken(sampler) == 0
    clock[0] += 0.25
    sampler.refill()
    assert taken(sampler) == 1  # 0.25 s at 4 per second
    clock[0] += 0.375
    sampler.refill()
    assert taken(sampler) == 1  # 1.5 tokens: one whole one, half a token left
    clock[0] += 0.125
    sampler.refill()
    assert taken(sampler) == 1


def test_the_bucket_holds_at_most_one_second_of_tokens(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=5, keep=100)  # type: ignore[arg-type]
    clock[0] += 60
    sampler.refill()
    assert taken(sampler) == 5


@pytest.mark.parametrize(("per_second", "keep"), [(0, 100), (5, 0)])
def test_no_rate_or_no_room_takes_nothing(clock: list[float], per_second: float, keep: int) -> None:
    sampler = Sampler(None, per_second=per_second, keep=keep)  # type: ignore[arg-type]
    clock[0] += 10
    sampler.refill()
    assert taken(sampler) == 0

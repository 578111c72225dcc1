"""The sampler's token bucket of rows: the hot path only compares; the serving loop refills it."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from loopline.serving import sampling
from loopline.serving.sampling import Sampler


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sampler's clock, moved by hand (only the sampler module sees it)."""
    now = [100.0]
    monkeypatch.setattr(
        sampling, "time", types.SimpleNamespace(monotonic=lambda: now[0], time=lambda: now[0])
    )
    return now


def taken(sampler: Sampler, tries: int = 100) -> int:
    """How many of ``tries`` one-row requests the sampler takes."""
    before = len(sampler._queue)
    for _ in range(tries):
        if sampler.wants():
            sampler.take("e", "blue", ["x"], np.zeros((1, 1)), np.zeros(1))
    return len(sampler._queue) - before


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


def test_a_large_request_gives_as_many_random_rows_as_there_are_tokens(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    data = np.arange(300.0).reshape(100, 3)
    answers = data[:, 0] * 2
    assert sampler.wants()
    sampler.take("e", "blue", ["a", "b", "c"], data, answers)
    taken_rows = sampler._queue
    assert len(taken_rows) == 10 and not sampler.wants()
    firsts = [row["features"]["a"] for row in taken_rows]
    assert len(set(firsts)) == 10 and firsts != [3.0 * i for i in range(10)]  # spread, not the first ten
    for row in taken_rows:  # each row keeps its own prediction
        assert list(row["features"].values()) == [row["features"]["a"] + i for i in range(3)]
        assert row["prediction"] == row["features"]["a"] * 2
    clock[0] += 0.5
    sampler.refill()
    sampler.take("e", "blue", ["a", "b", "c"], data[:2], answers[:2])  # small requests are taken whole
    assert len(sampler._queue) == 12


def test_a_data_frame_request_is_sampled_by_rows_too(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=3, keep=100)  # type: ignore[arg-type]
    frame = pd.DataFrame({"x": np.arange(50.0), "name": [f"n{i}" for i in range(50)]})
    sampler.take("e", "blue", ["x", "name"], frame, frame["x"].to_numpy() + 1)
    assert len(sampler._queue) == 3
    for row in sampler._queue:
        assert row["features"]["name"] == f"n{int(row['features']['x'])}"
        assert row["prediction"] == row["features"]["x"] + 1


def test_a_request_of_one_value_a_row_is_sampled_as_one_column(clock: list[float]) -> None:
    # texts to a model without a signature reach it as a 1-D array: each text is a row, not its letters
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    texts = np.array(["loved it", "a dull plot"])
    sampler.take("e", "blue", [], texts, np.array(["positive", "negative"]))
    assert [(row["features"], row["prediction"]) for row in sampler._queue] == [
        ({"0": "loved it"}, "positive"),
        ({"0": "a dull plot"}, "negative"),
    ]


def test_rows_for_a_model_fitted_on_an_array_are_sampled_by_position_whatever_a_client_names_them(
    clock: list[float],
) -> None:
    """One client sends CSV with its own header, another JSON rows without names: monitoring sees one set of
    columns (else half of every column reads as missing, and drift compares nothing)."""
    from loopline.serving.schema import InputSchema, parse_body, to_model_input

    schema = InputSchema(None, "float32")
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    bodies = [
        ("text/csv", b"sepal_length,sepal_width\n5.1,3.5\n"),
        ("application/json", b'{"inputs": [[6.7, 3.0]]}'),
        ("application/json", b'{"dataframe_split": {"columns": ["0", "1"], "data": [[5.9, 3.0]]}}'),
    ]
    for media, body in bodies:
        frame, _ = to_model_input(schema, parse_body("invocations", media, body))
        sampler.take("e", "blue", list(schema.names), frame, np.zeros(1))
    assert [sorted(row["features"]) for row in sampler._queue] == [["0", "1"]] * 3
    assert [row["features"]["1"] for row in sampler._queue] == [3.5, 3.0, 3.0]

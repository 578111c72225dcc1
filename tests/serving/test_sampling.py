"""The sampler's reservoir of rows per window of time: the hot path only compares and adds; the serving loop
closes each window."""

from __future__ import annotations

import types
from collections import Counter

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


def offer(sampler: Sampler, data: np.ndarray, endpoint: str = "e") -> None:
    """One request of ``data``'s rows answered, as the serving core offers it (its answer: the rows' first
    values, doubled)."""
    if sampler.wants(len(data)):
        sampler.take(endpoint, "blue", [f"c{i}" for i in range(data.shape[1])], data, data[:, 0] * 2)


def window(sampler: Sampler, clock: list[float], seconds: float = 1.0) -> list[dict]:
    """Close the window after ``seconds``: the rows it queued."""
    before = len(sampler._queue)
    clock[0] += seconds
    sampler.rotate()
    return sampler._queue[before:]


def test_a_window_keeps_per_second_rows_of_all_it_scored_and_queues_them_when_it_closes(
    clock: list[float],
) -> None:
    sampler = Sampler(None, per_second=4, keep=100)  # type: ignore[arg-type]
    for value in range(100):
        offer(sampler, np.array([[float(value)]]))
    assert sampler._queue == []  # the window is still open
    clock[0] += 0.5
    sampler.rotate()
    assert sampler._queue == []
    kept = window(sampler, clock, 0.5)
    assert len(kept) == 4 and len({row["features"]["c0"] for row in kept}) == 4
    assert window(sampler, clock) == []  # a window without requests keeps nothing
    for value in range(3):  # fewer rows than the window keeps: every one
        offer(sampler, np.array([[float(value)]]))
    assert sorted(row["features"]["c0"] for row in window(sampler, clock)) == [0.0, 1.0, 2.0]


def test_a_burst_is_sampled_across_its_requests_not_from_its_first(clock: list[float]) -> None:
    # A job scoring a sorted file: 13 requests of 30 rows a second. A token bucket gave every sample to the
    # first request of the burst (its 30 smallest values); each row of the burst is as likely to be kept.
    sampler = Sampler(None, per_second=20, keep=100)  # type: ignore[arg-type]
    rows = np.arange(390.0).reshape(390, 1)
    kept: Counter[int] = Counter()
    for _ in range(300):
        for start in range(0, 390, 30):
            offer(sampler, rows[start : start + 30])
        taken = window(sampler, clock)
        assert len(taken) == 20
        kept.update(int(row["features"]["c0"]) // 30 for row in taken)
    shares = [kept[request] / 6000 for request in range(13)]
    assert all(0.06 < share < 0.095 for share in shares), shares  # each request about 1/13 of the sample
    counts = Counter(int(row["features"]["c0"]) for row in sampler._queue)
    assert len(counts) == 390 and max(counts.values()) < 35  # every row, about 15 times each


def test_below_one_row_a_second_a_window_lasts_until_it_keeps_one(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=0.5, keep=100)  # type: ignore[arg-type]
    for value in range(10):
        offer(sampler, np.array([[float(value)]]))
    assert window(sampler, clock, 1.0) == []
    assert len(window(sampler, clock, 1.0)) == 1


def test_the_last_window_is_queued_when_the_server_stops(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    offer(sampler, np.array([[1.0], [2.0]]))
    sampler.rotate(last=True)
    assert [row["features"]["c0"] for row in sampler._queue] == [1.0, 2.0]


@pytest.mark.parametrize(("per_second", "keep"), [(0, 100), (5, 0)])
def test_no_rate_or_no_room_takes_nothing(clock: list[float], per_second: float, keep: int) -> None:
    sampler = Sampler(None, per_second=per_second, keep=keep)  # type: ignore[arg-type]
    assert not sampler.wants(1)
    offer(sampler, np.zeros((5, 1)))
    assert window(sampler, clock, 10) == []


def test_a_large_request_gives_random_rows_each_with_its_own_prediction(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    data = np.arange(300.0).reshape(100, 3)
    offer(sampler, data)
    kept = window(sampler, clock)
    firsts = [row["features"]["c0"] for row in kept]
    assert len(set(firsts)) == 10 and firsts != [3.0 * i for i in range(10)]  # spread, not the first ten
    for row in kept:  # each row keeps its own prediction
        assert list(row["features"].values()) == [row["features"]["c0"] + i for i in range(3)]
        assert row["prediction"] == row["features"]["c0"] * 2


class Answers(np.ndarray):
    """A model's answers that count how many values were made Python lists."""

    listed = 0

    def tolist(self) -> list:  # type: ignore[override]
        Answers.listed += self.size
        return super().tolist()


def test_only_the_kept_rows_answers_are_converted_not_the_whole_request_s(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=5, keep=100)  # type: ignore[arg-type]
    data = np.arange(20_000.0).reshape(10_000, 2)
    Answers.listed = 0
    sampler.take("e", "blue", ["c0", "c1"], data, (data[:, 0] * 2).view(Answers))
    kept = window(sampler, clock)
    # the rows the reservoir drew on its way (about 5 x (1 + ln 2,000), 43), not the request's 10,000
    assert len(kept) == 5 and 5 <= Answers.listed < 200
    assert all(row["prediction"] == row["features"]["c0"] * 2 for row in kept)


@pytest.mark.parametrize("kind", ["table", "series", "list", "short", "named"])
def test_each_kept_row_keeps_its_own_answer_whatever_the_model_answers(clock: list[float], kind: str) -> None:
    sampler = Sampler(None, per_second=4, keep=100)  # type: ignore[arg-type]
    data = np.arange(40.0).reshape(40, 1)
    doubled = [2.0 * i for i in range(40)]
    answers = {
        "table": pd.DataFrame(
            {"score": doubled, "label": [f"l{i}" for i in range(40)]}, index=range(100, 140)
        ),
        "series": pd.Series(doubled, index=range(100, 140)),  # an index of its own: rows go by position
        "list": doubled,
        "short": doubled[:20],  # a model that answered fewer rows: the rest kept without a prediction
        # a PythonModel's named outputs, one of them a single text (not a value a row)
        "named": {"score": np.array(doubled), "label": [f"l{i}" for i in range(40)], "model": "churn-v3"},
    }[kind]
    sampler.take("e", "blue", ["x"], data, answers)
    kept = window(sampler, clock)
    assert len(kept) == 4
    for row in kept:
        x = int(row["features"]["x"])
        if kind in ("table", "named"):
            assert row["prediction"] == {"score": 2.0 * x, "label": f"l{x}"}
        elif kind == "short" and x >= 20:
            assert row["prediction"] is None
        else:
            assert row["prediction"] == 2.0 * x


def test_requests_the_reservoir_draws_nothing_from_are_only_counted(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=2, keep=100)  # type: ignore[arg-type]
    offer(sampler, np.zeros((2, 1)))  # fills the reservoir
    skipped = 0
    for _ in range(1000):
        if not sampler.wants(1):
            skipped += 1
        else:
            sampler.take("e", "blue", ["c0"], np.ones((1, 1)), np.ones(1))
    assert skipped > 980 and sampler._seen == 1002  # about 2 x ln(500) rows drawn; every row counted


def test_a_data_frame_request_is_sampled_by_rows_too(clock: list[float]) -> None:
    sampler = Sampler(None, per_second=3, keep=100)  # type: ignore[arg-type]
    frame = pd.DataFrame({"x": np.arange(50.0), "name": [f"n{i}" for i in range(50)]})
    sampler.take("e", "blue", ["x", "name"], frame, frame["x"].to_numpy() + 1)
    sampler.rotate(last=True)
    assert len(sampler._queue) == 3
    for row in sampler._queue:
        assert row["features"]["name"] == f"n{int(row['features']['x'])}"
        assert row["prediction"] == row["features"]["x"] + 1


def test_a_request_of_one_value_a_row_is_sampled_as_one_column(clock: list[float]) -> None:
    # texts to a model without a signature reach it as a 1-D array: each text is a row, not its letters
    sampler = Sampler(None, per_second=10, keep=100)  # type: ignore[arg-type]
    texts = np.array(["loved it", "a dull plot"])
    sampler.take("e", "blue", [], texts, np.array(["positive", "negative"]))
    sampler.rotate(last=True)
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
    sampler.rotate(last=True)
    assert [sorted(row["features"]) for row in sampler._queue] == [["0", "1"]] * 3
    assert [row["features"]["1"] for row in sampler._queue] == [3.5, 3.0, 3.0]

"""Micro-batching: requests that arrive together share one model call; a bad one fails alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from loopline.serving.batching import Batcher


def doubling(calls: list[int]):  # type: ignore[no-untyped-def]
    def predict(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.shape[0])
        if (rows < 0).any():
            raise ValueError("negative")
        return rows[:, 0] * 2

    return predict


def test_requests_in_one_turn_share_a_call_and_get_their_own_answers() -> None:
    async def scenario() -> tuple[list[list[float]], list[int]]:
        calls: list[int] = []
        batcher = Batcher(doubling(calls), asyncio.get_running_loop(), max_rows=100)
        futures = [batcher.submit(np.array([[float(i)], [float(i) + 0.5]])) for i in range(5)]
        answers = await asyncio.gather(*futures)
        return answers, calls

    answers, calls = asyncio.run(scenario())
    assert answers == [[2 * i, 2 * i + 1] for i in range(5)]
    assert all(type(a) is list for a in answers)  # float64 answers come back as plain numbers
    assert calls == [10]


def test_float32_answers_come_back_as_their_exact_values_as_mlflow_prints_them() -> None:
    import io
    import json

    import orjson
    from mlflow.pyfunc.scoring_server import predictions_to_json

    async def scenario() -> list[object]:
        batcher = Batcher(lambda rows: (rows[:, 0] / 3).astype(np.float32), asyncio.get_running_loop(), 100)
        return await asyncio.gather(*[batcher.submit(np.full((2, 1), i + 0.1)) for i in range(3)])

    answers = asyncio.run(scenario())
    assert all(type(a) is list for a in answers)
    for i, answer in enumerate(answers):
        own = (np.full(2, i + 0.1) / 3).astype(np.float32)
        mlflow_body = io.StringIO()
        predictions_to_json(own, mlflow_body)
        assert orjson.loads(orjson.dumps({"predictions": answer})) == json.loads(mlflow_body.getvalue())
        assert answer == own.astype(np.float64).tolist()


@pytest.mark.parametrize("dtype", [np.int32, np.dtype("U5")])
def test_other_answer_types_come_back_as_numpy_slices_of_their_own_type(dtype: type) -> None:
    async def scenario() -> list[np.ndarray]:
        batcher = Batcher(lambda rows: rows[:, 0].astype(dtype), asyncio.get_running_loop(), max_rows=100)
        return await asyncio.gather(*[batcher.submit(np.full((2, 1), i + 0.25)) for i in range(3)])

    answers = asyncio.run(scenario())
    assert all(isinstance(a, np.ndarray) and a.dtype == np.dtype(dtype) for a in answers)
    assert [a.tolist() for a in answers] == [np.full(2, i + 0.25).astype(dtype).tolist() for i in range(3)]


def test_batches_respect_the_row_limit() -> None:
    async def scenario() -> list[int]:
        calls: list[int] = []
        batcher = Batcher(doubling(calls), asyncio.get_running_loop(), max_rows=4)
        await asyncio.gather(*[batcher.submit(np.ones((2, 1))) for _ in range(5)])
        return calls

    assert asyncio.run(scenario()) == [4, 4, 2]


def test_a_request_that_breaks_the_model_fails_alone() -> None:
    async def scenario() -> list[object]:
        batcher = Batcher(doubling([]), asyncio.get_running_loop(), max_rows=100)
        futures = [batcher.submit(np.array([[v]])) for v in (1.0, -1.0, 3.0)]
        return await asyncio.gather(*futures, return_exceptions=True)

    good, bad, other = asyncio.run(scenario())
    assert good.tolist() == [2.0] and other.tolist() == [6.0]  # type: ignore[union-attr]
    assert isinstance(bad, ValueError)


@pytest.mark.parametrize("busy", [False, True])
def test_a_single_request_is_answered_whatever_the_load(busy: bool) -> None:
    async def scenario() -> list[float]:
        batcher = Batcher(doubling([]), asyncio.get_running_loop(), max_rows=10)
        batcher._busy = busy
        return (await batcher.submit(np.array([[4.0]]))).tolist()

    assert asyncio.run(scenario()) == [8.0]


def test_a_slow_batch_is_predicted_off_the_loop_while_small_ones_are_answered() -> None:
    released = threading.Event()
    threads: dict[int, str] = {}

    def predict(rows: np.ndarray) -> np.ndarray:
        threads[rows.shape[0]] = threading.current_thread().name
        if rows.shape[0] >= 100 and not released.wait(10):  # held until the small request is answered
            raise TimeoutError("the small request was not answered while the large batch ran")
        return rows[:, 0] * 2

    async def scenario() -> tuple[list[float], list[float]]:
        batcher = Batcher(
            predict, asyncio.get_running_loop(), max_rows=1000, off_loop=lambda rows: rows >= 100
        )
        large = batcher.submit(np.ones((500, 1)))
        await asyncio.sleep(0.01)  # the large batch is now on a worker thread
        small = await batcher.submit(np.array([[3.0]]))
        released.set()
        return small.tolist(), list(await large)

    small, large = asyncio.run(scenario())
    assert small == [6.0] and large == [2.0] * 500
    assert threads[500].startswith("loopline-predict") and threads[1] == threading.main_thread().name


def test_a_slow_batch_that_breaks_the_model_fails_only_its_bad_request() -> None:
    async def scenario() -> list[object]:
        batcher = Batcher(
            doubling([]), asyncio.get_running_loop(), max_rows=1000, off_loop=lambda rows: rows >= 50
        )
        futures = [batcher.submit(np.full((40, 1), v)) for v in (1.0, -1.0, 3.0)]
        return await asyncio.gather(*futures, return_exceptions=True)

    good, bad, other = asyncio.run(scenario())
    assert list(good) == [2.0] * 40 and other.tolist() == [6.0] * 40  # type: ignore[union-attr]
    assert isinstance(bad, ValueError)


def test_slow_batches_arriving_while_one_is_off_the_loop_wait_and_go_as_one() -> None:
    released = threading.Event()
    calls: list[int] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.shape[0])
        if len(calls) == 1 and not released.wait(10):
            raise TimeoutError("never released")
        return rows[:, 0] * 2

    async def scenario() -> list[list[float]]:
        batcher = Batcher(
            predict, asyncio.get_running_loop(), max_rows=1000, off_loop=lambda rows: rows >= 100
        )
        first = batcher.submit(np.ones((500, 1)))
        await asyncio.sleep(0.01)
        later = [batcher.submit(np.full((200, 1), 3.0)) for _ in range(2)]
        await asyncio.sleep(0.01)  # the loop turns, and holds them while the first batch runs
        released.set()
        return [list(answer) for answer in await asyncio.gather(first, *later)]

    first, *later = asyncio.run(scenario())
    assert first == [2.0] * 500 and later == [[6.0] * 200] * 2
    assert calls == [500, 400]

"""The follower of loopline's database in a serving process: requests that wait for its next look."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from loopline.serving.state import MAX_WAITING, Follower
from loopline.state import Database


def test_requests_waiting_for_the_next_look_are_woken_by_it_and_their_number_is_bounded(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        looks: list[float] = []
        follower = Follower(
            database,
            "dev",
            loop,
            lambda routes: looks.append(time.monotonic()),
            max_batch_rows=10,
            poll_seconds=1,
        )
        waits = [asyncio.ensure_future(follower.caught_up()) for _ in range(MAX_WAITING)]
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await follower.caught_up()  # one more than the bound: not kept waiting
        assert time.monotonic() - started < 0.5
        assert not any(wait.done() for wait in waits)  # nothing looked at the database yet
        follower.start()
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout=3)  # the first look, about a second on
        finally:
            follower.stop()
        assert looks and time.monotonic() - started >= 0.9

    asyncio.run(scenario())

"""A stop within a bound: a background task that ignores the stop is named
with the call it waits in, then cancelled; the others return on their own."""

from __future__ import annotations

import asyncio
import logging
import time

from libs.runtime.stopping import awaiting, wait_or_cancel


async def _obedient(stop: asyncio.Event) -> str:
    await stop.wait()
    return "returned"


async def _wait_for_an_answer_that_never_comes() -> None:
    await asyncio.Event().wait()


async def _deaf(stop: asyncio.Event) -> None:
    await _wait_for_an_answer_that_never_comes()


async def test_a_task_that_ignores_the_stop_is_named_and_cancelled_after_the_grace(caplog) -> None:
    stop = asyncio.Event()
    obedient = asyncio.create_task(_obedient(stop), name="insights consumer")
    deaf = asyncio.create_task(_deaf(stop), name="matching relay")
    await asyncio.sleep(0)  # both suspended where they wait
    stop.set()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="libs.runtime.stopping"):
        cancelled = await asyncio.wait_for(wait_or_cancel([obedient, deaf], grace_s=0.2), 10)  # fails, never hangs
    assert time.monotonic() - started < 2
    assert cancelled == ["matching relay"]
    assert obedient.result() == "returned" and deaf.cancelled()
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("stopping: matching relay still running 0 s after the stop, cancelled; it waited in _deaf")
    assert "_wait_for_an_answer_that_never_comes (test_stopping.py:" in line


async def test_tasks_that_return_in_time_are_waited_for_not_cancelled() -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_obedient(stop), name=f"consumer {i}") for i in range(3)]
    asyncio.get_running_loop().call_later(0.1, stop.set)
    assert await wait_or_cancel(tasks, grace_s=5) == []
    assert [t.result() for t in tasks] == ["returned"] * 3
    assert await wait_or_cancel([]) == []


async def test_where_a_task_waits_is_its_chain_of_coroutines() -> None:
    task = asyncio.create_task(_deaf(asyncio.Event()))
    await asyncio.sleep(0)
    chain = awaiting(task)
    assert chain.index("_deaf") < chain.index("_wait_for_an_answer_that_never_comes") < chain.index("Event.wait")
    task.cancel()

"""Retries use tenacity's own retry, stop, wait and before_sleep: a loop
that counts its failures by hand and asks tenacity only for the delay is
the shape this test keeps out (libs/retry.until_stopped is the one way for
a loop that runs until the platform stops)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAND_COUNTED = re.compile(r"(\b|_)(failures|attempts?|tries|retries)\s*\+=\s*1")


def hand_counted() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for top in ("libs", "services")
        for path in (ROOT / top).rglob("*.py")
        if HAND_COUNTED.search(path.read_text())
    }


def test_no_loop_counts_its_failures_by_hand() -> None:
    assert hand_counted() == set()


def test_the_pattern_sees_a_count() -> None:
    assert HAND_COUNTED.search("            failures += 1")
    assert HAND_COUNTED.search("self._failures += 1")
    assert not HAND_COUNTED.search("state.attempt_number")


async def test_until_stopped_retries_counts_afresh_and_ends_with_stop() -> None:
    import asyncio

    import pytest
    from tenacity import RetryError

    from libs.retry import until_stopped

    stop, seen, calls = asyncio.Event(), [], []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) % 3:  # fails twice, then works
            raise ConnectionError("broker down")
        return "published"

    retrying = until_stopped(stop, before_sleep=lambda s: seen.append(s.attempt_number), multiplier=0.001, max=0.002)
    assert await retrying(flaky) == "published"
    assert await retrying(flaky) == "published"
    assert seen == [1, 2, 1, 2]  # each call counts from 1

    with pytest.raises(ValueError):  # not retried: raised as it is
        await until_stopped(stop, retry_if=lambda e: not isinstance(e, ValueError))(_raise(ValueError("lock lost")))

    async def failing() -> None:
        stop.set()
        raise ConnectionError("still down")

    with pytest.raises(RetryError):  # the platform stops: no more tries
        await until_stopped(stop, multiplier=0.001, max=0.002)(failing)


async def test_supervise_restarts_a_failing_worker_counting_afresh_until_stopped(caplog) -> None:
    import asyncio
    import logging

    from libs.runtime.platform import supervise

    stop, runs = asyncio.Event(), []

    async def worker(given: asyncio.Event) -> None:
        assert given is stop
        runs.append(1)
        if len(runs) == 3:
            return  # ended on its own: started again, its failures counted afresh
        if len(runs) == 5:
            stop.set()  # the platform stops while it fails: not started again
        raise ConnectionError(f"run {len(runs)} failed")

    with caplog.at_level(logging.ERROR, logger="libs.runtime.platform"):
        await asyncio.wait_for(supervise("probe", worker, stop, multiplier=0.001, max_wait=0.002, jitter=0), 5)

    assert len(runs) == 5
    logged = [r.getMessage() for r in caplog.records]
    assert logged == [f"probe failed; restarting (failure {n})" for n in (1, 2, 1, 2)]
    assert [str(r.exc_info[1]) for r in caplog.records] == [f"run {n} failed" for n in (1, 2, 4, 5)]


def _raise(exc: Exception):
    async def fail() -> None:
        raise exc

    return fail

"""Retrying, for the loops that run until the platform stops.

``until_stopped`` is the one way for such a loop (the relay, ``binome up``'s
supervisor of background workers, the consumer runtime): tenacity's own
retry, stop, wait and before_sleep around each call, the count starting
afresh with every call. ``exponential_backoff`` gives the delay of the n-th
failure for what keeps its count elsewhere (a message's next delivery
attempt, stored with the message; a worker process's quick deaths). Bounded
retries of one call use tenacity's ``AsyncRetrying`` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter


def exponential_backoff(**kwargs: float) -> Callable[[int], float]:
    """Seconds to wait after the n-th failure in a row (tenacity's
    ``wait_exponential_jitter``, same arguments)."""
    wait = wait_exponential_jitter(**kwargs)

    def delay(failures: int) -> float:
        state = RetryCallState(AsyncRetrying(wait=wait), fn=None, args=(), kwargs={})
        state.attempt_number = failures
        return wait(state)

    return delay


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def until_stopped(
    stop: asyncio.Event,
    *,
    retry_if: Callable[[BaseException], bool] = lambda exc: isinstance(exc, Exception),
    before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
    after: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
    **wait: float,
) -> AsyncRetrying:
    """Call again after each failure that ``retry_if`` accepts (others are
    raised), waiting with exponential backoff and jitter (``wait``: the
    arguments of tenacity's ``wait_exponential_jitter``), a wait that ``stop``
    cuts short; once ``stop`` is set, no more tries (``tenacity.RetryError``).
    ``after`` sees each failure retry_if accepts, the last one too (before
    the stop check); ``before_sleep`` each one followed by a wait
    (``state.attempt_number``, ``state.outcome``, ``state.upcoming_sleep``).
    ``await retrying(fn)`` and ``async for attempt in retrying`` count from 1
    every time."""

    async def sleep(seconds: float) -> None:
        await sleep_unless_stopped(stop, seconds)

    return AsyncRetrying(
        retry=retry_if_exception(retry_if),
        stop=lambda state: stop.is_set(),
        wait=wait_exponential_jitter(**wait),
        sleep=sleep,
        before_sleep=before_sleep,
        **({} if after is None else {"after": after}),
    )

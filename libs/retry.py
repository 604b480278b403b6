"""Waiting between tries, for the loops that retry until the platform stops
(the relay, the consumers, the supervised workers).

tenacity's wait strategies compute the delay; these loops run for ever and
keep their own count of failures (a failure is not one call to retry: the
consumer fetches the records again), so they ask a strategy for the delay of
the n-th failure through a tenacity ``RetryCallState`` at that attempt.
Bounded retries of one call use tenacity's ``AsyncRetrying`` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter


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

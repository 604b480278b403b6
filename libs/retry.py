"""Waiting between tries, for the loops that retry until the platform stops
(the relay, the consumers, the supervised workers).

tenacity's wait strategies compute the delay; these loops run for ever and
keep their own count of failures, so they call a strategy with that count
instead of building tenacity's whole retry state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import wait_exponential_jitter


@dataclass(frozen=True)
class _Attempt:
    """The slice of tenacity's RetryCallState that its wait strategies read."""

    attempt_number: int


def exponential_backoff(**kwargs: float) -> Callable[[int], float]:
    """Seconds to wait after the n-th failure in a row (tenacity's
    ``wait_exponential_jitter``, same arguments)."""
    wait = wait_exponential_jitter(**kwargs)
    return lambda failures: wait(_Attempt(failures))  # type: ignore[arg-type]


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)

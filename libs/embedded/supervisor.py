"""``binome up`` keeps its embedded broker and PostgreSQL running.

A watcher polls its child twice a second. When the child died (killed, OOM,
crashed), it is started again on the same port or socket, so every client
reconnects to the address it already knows. Restarts back off exponentially
(tenacity) while they fail; each attempt writes one log line and counts in
``binome_embedded_restarts_total{component}``. What must follow a restart
(the broker comes back empty: the log is carried to it again) runs after it,
retried the same way until it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from libs.observability.metrics import EMBEDDED_RESTARTS

log = logging.getLogger(__name__)

#: Between polls of a child that runs (its death shows within this).
POLL_INTERVAL_S = 0.5
_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)


class Child(Protocol):
    def alive(self) -> bool: ...

    async def respawn(self) -> None: ...


async def watch(
    component: str,
    child: Child,
    *,
    after_restart: Callable[[], Awaitable[None]] | None = None,
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Restart ``child`` each time it dies, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        if child.alive():
            continue
        log.warning("embedded %s died; restarting it", component)
        await _retrying(f"restart of the {component}", lambda: _restart(component, child))
        if after_restart is not None:
            await _retrying(f"recovery after the {component} restart", after_restart)


async def _restart(component: str, child: Child) -> None:
    EMBEDDED_RESTARTS.labels(component).inc()
    await child.respawn()
    log.info("embedded %s restarted", component)


async def _retrying(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` until it succeeds: one log line per failed attempt."""

    def log_failure(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d): %r; next attempt in %.1fs",
            what, state.attempt_number, error, state.next_action.sleep if state.next_action else 0.0,
        )

    async for attempt in AsyncRetrying(
        wait=_BACKOFF, retry=retry_if_exception_type(Exception), before_sleep=log_failure, reraise=True
    ):
        with attempt:
            await step()

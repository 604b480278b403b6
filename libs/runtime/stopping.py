"""Stopping within a bound: Ctrl-C must stop ``binome up``, and say what held it.

Every background task watches the platform's stop event and returns on its
own; this module is for the one that does not (a client library waiting on
a broker mid-rebalance, a connection never given back): after a grace period
it is named in the log with the call it waits in, then cancelled, so a stop
that hangs becomes a stop that is late, with its cause written down.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import asyncpg

log = logging.getLogger(__name__)

#: How long the background's tasks get to return once told to stop.
TASKS_GRACE_S = 10.0
#: How long a pool gets to see its connections given back and closed.
POOL_GRACE_S = 5.0


async def wait_or_cancel(tasks: Sequence[asyncio.Task], grace_s: float = TASKS_GRACE_S) -> list[str]:
    """Wait for ``tasks`` to return; cancel those still running after
    ``grace_s``, each logged with where it waits. Returns their names."""
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        log.warning("stopping: %s still running %.0f s after the stop, cancelled; it waited in %s",
                    task.get_name(), grace_s, awaiting(task))  # fmt: skip
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sorted(task.get_name() for task in pending)


def awaiting(task: asyncio.Task) -> str:
    """The chain of coroutines ``task`` is suspended in, outermost first:
    ``run (consumer.py:312) > stop (consumer.py:1234)`` (``Task.get_stack``
    gives only the outermost frame of a suspended coroutine)."""
    where = []
    coro = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_qualname} ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(where) or "nothing (it was about to end)"


async def close_pool(pool: asyncpg.Pool, name: str, grace_s: float = POOL_GRACE_S) -> bool:
    """Close ``pool``; a connection still out after ``grace_s`` (asyncpg's
    ``close`` waits for every one to come back, for ever) is logged and the
    pool terminated. True if it closed gracefully."""
    try:
        await asyncio.wait_for(pool.close(), grace_s)
        return True
    except TimeoutError:
        log.warning("stopping: the %s pool still had connections out %.0f s after the stop; terminated", name, grace_s)
        pool.terminate()
        return False

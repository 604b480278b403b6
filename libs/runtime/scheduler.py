"""Scheduled jobs: work that falls due on the platform clock, done once per
platform however many instances run, and picked up again after a restart.

A ``ScheduledJob`` calls ``job(now)`` every ``interval`` seconds (and again
at once while the job reports that it did something, so a backlog drains
without waiting). Each call runs inside a transaction holding the
PostgreSQL advisory lock ``binome.schedule.<name>``
(``pg_try_advisory_xact_lock``): a second instance whose tick comes while
the first holds it skips that tick, so two instances never run one job at
once. The lock is transaction-scoped, as ``libs/database.py`` wants, and
goes with the transaction if the process dies.

Nothing is remembered between ticks: a job finds what is due from its
service's own tables on each call (e.g. open waves whose closing day has
come), and its effects are events appended with an expected version, so a
tick that crashed halfway is simply completed by the next one, and a job
running after a restart does exactly what was still due. ``now`` comes from
the platform's clock (``libs/runtime/clock.py``): moving the dev clock makes
work due, and the next tick does it.

How a service uses it: build one per job in its ``workers``::

    job = ScheduledJob("enrollment.wave-calendar", ctx.pool, calendar.run_due, ctx.clock,
                       ctx.settings.scheduler_interval_s)
    return [("wave calendar", job.run)]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.retry import sleep_unless_stopped
from libs.runtime.clock import Clock

log = logging.getLogger(__name__)

#: What a job does at ``now``; returns how many things it did (0: nothing due).
Job = Callable[[datetime], Awaitable[int]]


@dataclass
class ScheduledJob:
    name: str  # also the lock's key: one name per job and platform
    pool: asyncpg.Pool
    job: Job
    clock: Clock
    interval_s: float = 10.0

    async def tick(self) -> int | None:
        """One run under the lock: what the job did, or None if another
        instance holds the lock (it is running this job now)."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"binome.schedule.{self.name}"):
                return None
            return await self.job(self.clock())

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` (``binome up`` supervises it: a failure restarts it with backoff)."""
        while not stop.is_set():
            done = await self.tick()
            if done:
                log.info("%s: %d done", self.name, done)
                continue  # more may be due: drain before sleeping
            await sleep_unless_stopped(stop, self.interval_s)

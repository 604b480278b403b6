"""A pool closes within a bound at a stop, even with a connection never given back."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from libs.database import create_pool
from libs.runtime.stopping import close_pool

pytestmark = pytest.mark.integration


async def test_a_connection_never_given_back_no_longer_holds_the_stop(database_url: str, caplog) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    kept = await pool.acquire()  # a task cancelled mid-statement, a leak: never released
    backend = kept.get_server_pid()
    started = time.monotonic()
    # Bounded here too: asyncpg's own close would wait for ever (the test fails, it does not hang).
    assert await asyncio.wait_for(close_pool(pool, "platform", grace_s=0.3), 10) is False
    assert time.monotonic() - started < 3
    assert "the platform pool still had connections out" in caplog.text
    # Terminated: its server process ends (nothing left for PostgreSQL's stop to wait for).
    watcher = await asyncpg.connect(database_url)
    try:
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)"
        for _ in range(50):
            if await watcher.fetchval(gone, backend):
                break
            await asyncio.sleep(0.1)
        assert await watcher.fetchval(gone, backend)
    finally:
        await watcher.close()


async def test_a_pool_whose_connections_came_back_closes_gracefully(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert await close_pool(pool, "platform", grace_s=5) is True

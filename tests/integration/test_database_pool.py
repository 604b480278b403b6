"""``libs.database.create_pool``: connections go back without asyncpg's reset
query, and still come back clean of transactions."""

from __future__ import annotations

import asyncpg
import pytest

from libs.database import create_pool

pytestmark = pytest.mark.integration


async def last_statement(observer: asyncpg.Pool, pid: int) -> str:
    return await observer.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)


async def test_a_released_connection_is_not_sent_the_reset_query(database_url: str) -> None:
    async with await create_pool(database_url, min_size=1, max_size=1) as pool, await create_pool(
        database_url, min_size=1, max_size=1
    ) as observer:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.execute("SELECT 'binome-marker'")
        # asyncpg's default would have run "SELECT pg_advisory_unlock_all(); ... RESET ALL;" last.
        assert await last_statement(observer, pid) == "SELECT 'binome-marker'"
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid  # the same connection came back


async def test_a_transaction_left_open_is_rolled_back_on_release(database_url: str, schema: str) -> None:
    async with await create_pool(database_url, min_size=1, max_size=1) as pool:
        await pool.execute(f"CREATE TABLE {schema}.scratch (n int)")
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute(f"INSERT INTO {schema}.scratch VALUES (1)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.scratch") == 0

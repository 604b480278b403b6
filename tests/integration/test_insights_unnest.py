"""A round's statement run once over arrays (services/insights/facts/
unnest.py) writes the same rows as running it once per row in order
(``executemany``): with distinct keys, with a key repeated in one group (an
order-dependent upsert and update, left to ``executemany``), and for every
statement insights' handlers write, which all have an array form (a handler
whose statement fell back to ``executemany`` would silently cost the replay
its speed)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from libs.events.registry import registry
from libs.eventstore.migrations import migrate
from services.insights import SERVICE
from services.insights.consumers.insights import READ_MODEL_TABLES, InsightsProjection
from services.insights.facts.batching import Deferred
from services.insights.facts.unnest import array_form, execute_rows
from tests.support.insights import T0, Scenario, health_scenario, table_rows

pytestmark = pytest.mark.integration

UPSERT = """INSERT INTO {t} (k, n, at) VALUES ($1, $2, $3)
            ON CONFLICT (k) DO UPDATE SET n = {t}.n * 10 + EXCLUDED.n, at = $3"""
UPDATE = "UPDATE {t} SET n = n * 10 + $2 WHERE k = $1"
DELETE = "DELETE FROM {t} WHERE k = $1"


@pytest.fixture
async def twins(pool):
    """Two like tables: ``one`` written row by row, ``arrays`` by ``execute_rows``."""
    names = (f"unnest_one_{uuid.uuid4().hex[:8]}", f"unnest_arrays_{uuid.uuid4().hex[:8]}")
    for name in names:
        await pool.execute(f"CREATE TABLE {name} (k uuid PRIMARY KEY, n int NOT NULL, at timestamptz)")
    yield names
    for name in names:
        await pool.execute(f"DROP TABLE {name}")


async def both(pool, twins, sql: str, rows: list[tuple]) -> tuple[list, list]:
    one, arrays = twins
    async with pool.acquire() as conn:
        for row in rows:
            await conn.execute(sql.format(t=one), *row)
        await execute_rows(conn, sql.format(t=arrays), rows)
    return [
        [tuple(r) for r in await pool.fetch(f"SELECT k, n, at FROM {name} ORDER BY k")] for name in twins
    ]


async def test_distinct_keys_run_as_one_statement_and_write_the_same_rows(pool, twins):
    a, b, c = (uuid.uuid4() for _ in range(3))
    one, arrays = await both(pool, twins, UPSERT, [(a, 1, T0), (b, 2, None), (c, 3, T0)])
    assert one == arrays and len(one) == 3
    one, arrays = await both(pool, twins, UPSERT, [(a, 4, None), (b, 5, T0)])  # the DO UPDATE branch
    assert one == arrays and {r[1] for r in one} == {14, 25, 3}
    one, arrays = await both(pool, twins, UPDATE, [(c, 6), (a, 7)])
    assert one == arrays and {r[1] for r in one} == {147, 25, 36}
    one, arrays = await both(pool, twins, DELETE, [(a,), (b,)])
    assert one == arrays and [r[0] for r in one] == [c]
    async with pool.acquire() as conn:
        assert all([await array_form(conn, sql.format(t=twins[1])) for sql in (UPSERT, UPDATE, DELETE)])


async def test_a_key_repeated_in_one_group_is_applied_in_order(pool, twins):
    a, b = uuid.uuid4(), uuid.uuid4()
    one, arrays = await both(pool, twins, UPSERT, [(a, 1, T0), (b, 2, T0), (a, 3, None), (a, 4, T0)])
    assert one == arrays and sorted(r[1] for r in one) == sorted([134, 2])
    one, arrays = await both(pool, twins, UPDATE, [(b, 5), (b, 6), (a, 7)])
    assert one == arrays and sorted(r[1] for r in one) == sorted([1347, 256])


async def test_every_statement_of_insights_handlers_has_an_array_form(pool):
    schema = f"unnest_{uuid.uuid4().hex[:8]}"
    sc, _ = health_scenario()
    sc.k_anonymity(3)
    mentee = sc.enrol("FR", "mentee")
    mentor = sc.enrol("FR", "mentor")
    pair = sc.pair(mentee, mentor)
    sc.no_show(pair, T0 + timedelta(days=3))
    sc.dissolve(pair, T0 + timedelta(days=9))
    sc.over_budget(pair, date(2026, 3, 1), T0 + timedelta(days=5))
    sc.withdraw(sc.enrol("FR", "mentee"))
    sc.transfer(sc.enrol("FR", "mentor"), "DE")
    sc.erase(mentee)
    projection = InsightsProjection(schema)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, SERVICE.migrations)
            statements = set()
            for _, envelope in sc.events:
                event = registry.load(envelope)
                handler = projection.handler_for(event)
                if handler is not None:
                    deferred = Deferred(conn)
                    await handler(deferred, envelope, event)
                    statements.update(sql for sql, _ in deferred.statements)
            assert len(statements) > 20
            missing = [sql for sql in statements if await array_form(conn, sql) is None]
            assert missing == []
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def test_a_replay_batch_writes_the_rows_of_one_event_at_a_time(pool):
    """A whole scenario in one ``replay_batch`` (array statements) and event
    by event through ``handle`` (one row per statement) give the same tables."""
    schemas = [f"unnest_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    scenarios = [health_scenario()[0] for _ in range(3)]  # three programmes: rounds of many rows
    events = [(e, registry.load(e)) for sc in scenarios for _, e in sc.events]
    try:
        async with pool.acquire() as conn:
            for schema in schemas:
                await migrate(conn, schema, SERVICE.migrations)
            batched, single = (InsightsProjection(s) for s in schemas)
            async with conn.transaction():
                await batched.replay_batch(conn, events)
                await batched.replay_done(conn)
            for envelope, event in events:
                await single.handle(conn, envelope, event)
        for table in READ_MODEL_TABLES:
            assert await table_rows(pool, schemas[0], table) == await table_rows(pool, schemas[1], table), table
    finally:
        for schema in schemas:
            await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

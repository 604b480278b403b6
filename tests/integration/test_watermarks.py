"""Consumers' watermarks against the event store: lag that cannot lie, and an
empty broker that gets only what some consumer still needs."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from libs.database import create_pool
from libs.eventstore.store import Checkpoint, EventStore
from libs.messaging.watermarks import BacklogMonitor, Subscription, Watermarks
from libs.observability import metrics
from tests.support.events import probe

pytestmark = pytest.mark.integration


@pytest.fixture(params=["one query", "in chunks"])
async def walker(request, pool: asyncpg.Pool, database_url: str, schema: str):
    """Watermarks over ``schema``: source and consumer in one database (one
    anti-join), or the source reached through a pool of its own (as with a
    database per service: chunks of events, applied ids from the consumer's)."""
    if request.param == "one query":
        yield lambda **kw: Watermarks(pool, **kw)
        return
    other = await create_pool(database_url, min_size=1, max_size=2)
    try:
        yield lambda **kw: Watermarks(pool, sources={schema: other}, **kw)
    finally:
        await other.close()


async def mark_applied(pool: asyncpg.Pool, schema: str, consumer: str, event_ids) -> None:
    await pool.execute(
        f"INSERT INTO {schema}.applied_events (consumer, event_id) SELECT $1, unnest($2::uuid[])",
        consumer,
        list(event_ids),
    )


async def append(store: EventStore, n: int, prefix: str = "s") -> list:
    ids = []
    for i in range(n):
        result = await store.append(f"{prefix}{i}", None, [probe(f"{prefix}{i}", i)])
        ids.append(result.events[0].id)
    return ids


async def outbox_size(pool: asyncpg.Pool, schema: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox")


async def test_a_consumer_that_applies_nothing_shows_a_growing_backlog(pool: asyncpg.Pool, schema: str, walker) -> None:
    """A blocked consumer's backlog grows with the log, whatever the broker says."""
    store = EventStore(pool, schema)
    subscription = Subscription("svc", schema, "blocked", schema)
    monitor = BacklogMonitor(walker(), [subscription])
    ids = await append(store, 3)
    await mark_applied(pool, schema, "blocked", ids[:1])

    first = (await monitor.refresh())[0]
    assert first.backlog_events == 2
    assert first.oldest_unapplied_at is not None
    await append(store, 4, prefix="t")
    await asyncio.sleep(0.05)
    second = (await monitor.refresh())[0]
    assert second.backlog_events == 6
    assert second.watermark == first.watermark  # nothing more applied: it did not move
    labels = ("svc", "blocked", schema)
    assert metrics.CONSUMER_BACKLOG_EVENTS.labels(*labels)._value.get() == 6
    assert metrics.CONSUMER_BACKLOG_SECONDS.labels(*labels)._value.get() >= 0.05  # the oldest keeps ageing

    await mark_applied(pool, schema, "blocked", ids[1:])
    caught_up = (await monitor.refresh())[0]
    assert caught_up.backlog_events == 4  # the four t-events remain
    assert caught_up.watermark > second.watermark


async def test_the_watermark_never_passes_a_transaction_still_running(pool: asyncpg.Pool, schema: str, walker) -> None:
    """Positions commit out of order: an event allocated a lower position but
    committed later must still be ahead of the watermark once it commits."""
    store = EventStore(pool, schema)
    watermarks = walker()
    subscription = Subscription("svc", schema, "reader", schema)
    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        late = await store.append("late", None, [probe("late", 1)], conn=slow)  # lower position, not committed
        early = await append(store, 3)  # higher positions, committed
        await mark_applied(pool, schema, "reader", early)
        standing = await watermarks.advance(subscription)
        assert standing.watermark == Checkpoint()  # the running transaction holds it back
        await transaction.commit()
    standing = await watermarks.advance(subscription)
    # Committed now, but not applied: the watermark stops before it, and the
    # backlog shows it however old the other events are.
    assert standing.backlog_events >= 1 and standing.oldest_unapplied_at is not None
    late_position = await pool.fetchval(f"SELECT position FROM {schema}.events WHERE event_id = $1", late.events[0].id)
    await pool.execute(f"DELETE FROM {schema}.outbox")  # published, then the broker lost it
    assert await store.republish_after(standing.watermark) >= 1
    queued = {r[0] for r in await pool.fetch(f"SELECT position FROM {schema}.outbox")}
    assert late_position in queued


async def test_an_empty_broker_gets_only_what_the_slowest_consumer_needs(pool: asyncpg.Pool, schema: str, walker) -> None:
    store = EventStore(pool, schema)
    ids = await append(store, 10)
    await pool.execute(f"DELETE FROM {schema}.outbox")  # published long ago
    await mark_applied(pool, schema, "fast", ids)
    await mark_applied(pool, schema, "slow", ids[:7])
    watermarks = walker()
    subscriptions = [Subscription("svc", schema, name, schema) for name in ("fast", "slow")]

    lowest = await watermarks.lowest(subscriptions, schema)
    assert await store.republish_after(lowest) == 3  # only what "slow" has not applied

    await pool.execute(f"DELETE FROM {schema}.outbox")
    await mark_applied(pool, schema, "slow", ids[7:])
    assert await store.republish_after(await watermarks.lowest(subscriptions, schema)) == 0  # caught up: nothing
    assert await watermarks.lowest(subscriptions, "nobody_reads_this") is None


async def test_a_watermark_only_moves_forward(pool: asyncpg.Pool, schema: str) -> None:
    """Two instances advance the same watermark: the slower write never moves it back."""
    store = EventStore(pool, schema)
    ids = await append(store, 4)
    await mark_applied(pool, schema, "c", ids)
    subscription = Subscription("svc", schema, "c", schema)
    ahead = (await Watermarks(pool).advance(subscription)).watermark
    await Watermarks(pool)._store(subscription, Checkpoint(), ids[0])  # a slower instance's stale view
    assert await Watermarks(pool)._stored(subscription) == ahead


async def test_a_rebuild_is_never_undone_by_a_walk_that_read_before_it(pool: asyncpg.Pool, schema: str) -> None:
    """The monitor walked, then a rebuild forgot what the consumer applied
    (and its watermark): the walk's result must not come back, or the
    rebuilt read model would look caught up while it is empty."""
    store = EventStore(pool, schema)
    ids = await append(store, 3)
    await mark_applied(pool, schema, "c", ids)
    subscription = Subscription("svc", schema, "c", schema)
    walked = (await Watermarks(pool).advance(subscription)).watermark
    for table in ("applied_events", "consumer_watermarks"):  # what rebuild() forgets
        await pool.execute(f"DELETE FROM {schema}.{table} WHERE consumer = 'c'")
    await Watermarks(pool)._store(subscription, walked, ids[-1])  # the walk's late write
    assert await Watermarks(pool)._stored(subscription) == Checkpoint()
    assert (await Watermarks(pool).advance(subscription)).backlog_events == 3


async def test_a_long_log_is_walked_to_the_first_gap(pool: asyncpg.Pool, schema: str, walker) -> None:
    store = EventStore(pool, schema)
    ids = await append(store, 25)
    await mark_applied(pool, schema, "c", ids[:23])
    await pool.execute(f"DELETE FROM {schema}.outbox")
    standing = await walker(chunk=4).advance(Subscription("svc", schema, "c", schema))
    assert standing.backlog_events == 2
    assert await store.republish_after(standing.watermark) == 2

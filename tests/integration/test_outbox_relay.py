"""The outbox relay against real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from libs.embedded.broker import EmbeddedBroker
from libs.events import topic_for_context
from libs.eventstore.store import EventStore, StreamAppend
from libs.messaging.relay import OutboxRelay
from tests.support.events import probe
from tests.support.kafka import read_topic, wait_for

pytestmark = pytest.mark.integration


async def outbox_empty(pool: asyncpg.Pool, schema: str) -> bool:
    return await pool.fetchval(f"SELECT count(*) = 0 FROM {schema}.outbox")


async def test_concurrent_writers_and_a_live_relay_skip_nothing(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The gap problem: many writers whose transactions commit out of position
    order, a relay publishing all the while. Published set == committed set,
    and each stream arrives in version order."""
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    relay = OutboxRelay(pool, schema, kafka_bootstrap, batch_size=50, poll_interval_s=0.02)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    rng = random.Random(7)
    committed: list[str] = []

    async def writer(w: int) -> None:
        for i in range(25):
            stream = f"w{w}-s{i % 3}"
            async with pool.acquire() as conn, conn.transaction():
                version = await store.stream_version(stream)
                result = await store.append(stream, version, [probe(stream, i)], conn=conn)
                # Hold the transaction open: later positions commit before this one.
                await asyncio.sleep(rng.random() * 0.02)
            committed.extend(str(e.id) for e in result.events)

    await asyncio.gather(*(writer(w) for w in range(16)))
    await wait_for(lambda: outbox_empty(pool, schema))
    stop.set()
    await relay_task

    records = await read_topic(kafka_bootstrap, topic_for_context("platform", topic_prefix), until=len(committed))
    published = [orjson.loads(r.value) for r in records]
    assert {p["id"] for p in published} == set(committed)
    assert len(committed) == 16 * 25
    by_stream: dict[str, list[int]] = {}
    for record, payload in zip(records, published, strict=True):
        assert record.key.decode() == payload["subject"]
        by_stream.setdefault(payload["subject"], []).append(payload["streamversion"])
    assert all(seqs == sorted(seqs) for seqs in by_stream.values())


async def test_only_one_relay_is_active(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    stop = asyncio.Event()
    relays = [OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.02) for _ in range(3)]
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    for i in range(30):
        await store.append(f"s{i}", 0, [probe(f"s{i}", i)])
    await wait_for(lambda: outbox_empty(pool, schema))
    stop.set()
    await asyncio.gather(*tasks)
    records = await read_topic(kafka_bootstrap, topic_for_context("platform", topic_prefix), until=30, timeout=3)
    assert len(records) == 30  # no relay published a row another one had


async def test_relay_survives_a_broker_outage(pool: asyncpg.Pool, schema: str, own_broker: EmbeddedBroker, topic_prefix: str) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    relay = OutboxRelay(pool, schema, own_broker.bootstrap, poll_interval_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await store.append("before", 0, [probe("before")])
    await wait_for(lambda: outbox_empty(pool, schema))

    own_broker.stop()
    appended = []
    for i in range(20):
        result = await store.append(f"during-{i}", 0, [probe(f"during-{i}", i)])
        appended.extend(str(e.id) for e in result.events)
    await asyncio.sleep(1.5)  # the relay fails and backs off; rows stay
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 20

    # Ops see it: failures are counted and the lag gauge keeps moving.
    async def failing_and_lagging() -> bool:
        failures = REGISTRY.get_sample_value("binome_relay_publish_failures_total", {"service": schema}) or 0
        lag = REGISTRY.get_sample_value("binome_outbox_lag_events", {"service": schema})
        return failures > 0 and lag == 20

    await wait_for(failing_and_lagging, timeout=40)

    own_broker.start()  # same port, empty (memory-only broker)
    await wait_for(lambda: outbox_empty(pool, schema), timeout=40)
    stop.set()
    await task
    records = await read_topic(own_broker.bootstrap, topic_for_context("platform", topic_prefix), until=20)
    assert {orjson.loads(r.value)["id"] for r in records} == set(appended)


async def test_a_wake_up_during_a_pass_starts_the_next_pass(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The lost wake-up: an event committed while a pass runs must not wait for
    the poll (an hour here) but be published by the next pass."""
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    appended_during_pass: list[int] = []

    async def append_during_the_pass(_positions: list[int]) -> None:
        if not appended_during_pass:
            appended_during_pass.append(1)
            await store.append("second", 0, [probe("second")])  # wakes the relay mid-pass

    relay = OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=3600, after_publish=append_during_the_pass)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await store.append("first", 0, [probe("first")])
        await wait_for(lambda: outbox_empty(pool, schema), timeout=30)
    finally:
        stop.set()
        await task
    records = await read_topic(kafka_bootstrap, topic_for_context("platform", topic_prefix), until=2)
    assert sorted(orjson.loads(r.value)["subject"] for r in records) == ["first", "second"]


async def test_a_relay_that_loses_its_database_connection_steps_down(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Its advisory lock went with the connection: it must stop publishing (the
    supervisor restarts it) so that two relays never publish at once."""
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    relay = OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await store.append("before", 0, [probe("before")])
    await wait_for(lambda: outbox_empty(pool, schema))

    await pool.execute("SELECT pg_terminate_backend($1)", relay._conn.get_server_pid())
    # How asyncpg reports the loss depends on when the relay's next query
    # starts: after the socket closed (InterfaceError), while the server's
    # FATAL is read (PostgresConnectionError), or between the two, when the
    # protocol still consumes that error ("another operation is in progress",
    # InternalClientError). Each is the relay stepping down, raised.
    with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError)):
        await asyncio.wait_for(task, timeout=30)

    await store.append("after", 0, [probe("after")])
    successor = asyncio.create_task(OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.05).run(stop))
    await wait_for(lambda: outbox_empty(pool, schema))
    stop.set()
    await successor
    records = await read_topic(kafka_bootstrap, topic_for_context("platform", topic_prefix), until=2)
    assert sorted(orjson.loads(r.value)["subject"] for r in records) == ["after", "before"]


async def held_advisory_locks(pool: asyncpg.Pool) -> list[int]:
    """Backends that hold a session advisory lock in this database."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return [r["pid"] for r in rows]


async def pooled_sessions(pool: asyncpg.Pool) -> dict[int, int]:
    """Backend pid -> channels it listens to, for every connection the pool holds."""
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        return {conn.get_server_pid(): await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") for conn in held}
    finally:
        for conn in held:
            await pool.release(conn)


async def elected(relay: OutboxRelay) -> bool:
    return relay._conn is not None


async def test_a_relay_with_its_own_connection_keeps_its_lock_out_of_the_pool(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    """The platform's relays hold their lock and LISTEN on a connection of
    their own, so the pool (which skips asyncpg's reset) never hands out a
    connection holding them; stopping the relay ends both."""
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    relay = OutboxRelay(
        pool, schema, kafka_bootstrap, poll_interval_s=3600, connect=lambda: asyncpg.connect(database_url)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await wait_for(lambda: elected(relay))
    own = relay._conn.get_server_pid()
    assert own in await held_advisory_locks(pool)
    assert own not in await pooled_sessions(pool)

    await store.append("woken", 0, [probe("woken")])  # LISTEN (or the in-process wake-up) works
    await wait_for(lambda: outbox_empty(pool, schema))
    stop.set()
    await task
    assert own not in await held_advisory_locks(pool)
    assert relay._conn is None


async def test_a_relay_on_a_pooled_connection_gives_it_back_clean(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str
) -> None:
    """Without ``connect`` the relay borrows a pooled connection; the test pool,
    like the platform's, skips asyncpg's reset, so the relay resets it itself:
    afterwards no pooled connection holds the lock or listens."""
    relay = OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await wait_for(lambda: elected(relay))
    borrowed = relay._conn.get_server_pid()
    assert borrowed in await held_advisory_locks(pool)
    assert (await pooled_sessions(pool)).get(borrowed) is None  # lent out to the relay
    stop.set()
    await task
    assert borrowed not in await held_advisory_locks(pool)
    assert (await pooled_sessions(pool))[borrowed] == 0  # back in the pool, listening to nothing


async def test_a_pass_reads_events_by_key_whatever_the_statistics(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """On a young events table that was never analysed, a plain join of the
    outbox and the events hashed the whole events table on every pass (each
    pass slower than the last). The pass reads the oldest outbox rows, then
    each one's event by primary key."""
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    for start in range(0, 3000, 500):
        await store.append_many([StreamAppend(f"s{i}", 0, [probe(f"s{i}", i)]) for i in range(start, start + 500)])
    relay = OutboxRelay(pool, schema, kafka_bootstrap)
    plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN " + relay._sql_pending.replace("$1", "1000")))
    assert "Seq Scan on events" not in plan and "Hash Join" not in plan and "Merge Join" not in plan, plan
    assert "Index Scan using events_pkey" in plan, plan
    rows = await pool.fetch(relay._sql_pending, 1000)
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows) and len(rows) == 1000

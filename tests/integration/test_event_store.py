"""The event store against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from prometheus_client import REGISTRY

from libs.eventstore.migrations import EVENT_STORE_MIGRATIONS, load_migrations, migrate
from libs.eventstore.store import (
    Checkpoint,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    StreamAppend,
    local_relay,
    notify_channel,
)
from tests.support.events import probe

pytestmark = pytest.mark.integration


async def test_append_and_read_stream(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    first = await store.append("s-1", 0, [probe("s-1", 1), probe("s-1", 2)])
    assert first.version == 2
    second = await store.append("s-1", 2, [probe("s-1", 3)])
    assert second.version == 3
    events = await store.read_stream("s-1")
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.data["value"] for e in events] == [1, 2, 3]
    assert [e.sequence for e in await store.read_stream("s-1", after_version=2)] == [3]


async def test_wrong_expected_version_is_a_concurrency_error(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("s-1", 0, [probe("s-1")])
    with pytest.raises(ConcurrencyError) as raised:
        await store.append("s-1", 0, [probe("s-1")])
    assert raised.value.actual == 1
    assert await store.stream_version("s-1") == 1


async def test_twenty_concurrent_appends_at_one_version_exactly_one_wins(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("hot", 0, [probe("hot")])

    async def attempt(i: int) -> str:
        try:
            await store.append("hot", 1, [probe("hot", i)])
            return "won"
        except ConcurrencyError:
            return "conflict"

    outcomes = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert outcomes.count("won") == 1
    assert outcomes.count("conflict") == 19
    versions = [e.sequence for e in await store.read_stream("hot")]
    assert versions == [1, 2]


async def test_retried_append_writes_one_copy(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    batch = [probe("s-1", 1), probe("s-1", 2)]
    original = await store.append("s-1", 0, batch)
    # The reply was lost; the client sends the very same append again.
    retried = await store.append("s-1", 0, batch)
    assert retried.replayed and not original.replayed
    assert retried.version == original.version == 2
    assert len(await store.read_stream("s-1")) == 2
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 2


async def test_concurrent_identical_retries_write_one_copy(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    batch = [probe("s-1", 1)]
    results = await asyncio.gather(*(store.append("s-1", 0, batch) for _ in range(8)))
    assert {r.version for r in results} == {1}
    assert len(await store.read_stream("s-1")) == 1


async def test_append_joins_the_callers_transaction(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await store.append("s-1", 0, [probe("s-1")], conn=conn)
                raise RuntimeError("the command failed after appending")
    assert await store.read_stream("s-1") == []
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0


async def test_a_version_taken_meanwhile_leaves_the_callers_transaction_usable(
    pool: asyncpg.Pool, schema: str
) -> None:
    """The race the unique (stream_id, version) settles, inside a caller's
    transaction: the loser gets a ConcurrencyError, its own inserts undone,
    and its transaction goes on (the function's EXCEPTION block, no savepoint)."""
    store = EventStore(pool, schema)
    async with pool.acquire() as winner, pool.acquire() as loser:
        winning = winner.transaction()
        await winning.start()
        await store.append("hot", 0, [probe("hot", 1)], conn=winner)
        async with loser.transaction():
            # Waits on the winner's uncommitted version 1, then finds it taken.
            attempt = asyncio.create_task(store.append("hot", 0, [probe("hot", 2), probe("hot", 3)], conn=loser))
            await asyncio.sleep(0.2)
            assert not attempt.done()
            await winning.commit()
            with pytest.raises(ConcurrencyError):
                await attempt
            other = await store.append("cold", 0, [probe("cold")], conn=loser)  # the transaction goes on
    assert other.version == 1 and len(await store.read_stream("cold")) == 1
    assert [e.data["value"] for e in await store.read_stream("hot")] == [1]
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 2


async def test_an_append_in_a_callers_transaction_is_one_round_trip(pool: asyncpg.Pool, schema: str) -> None:
    """No SAVEPOINT and RELEASE around it: each would be a round trip of its own.
    (A conflict then looks its event ids up: a retry of an append stored already.)"""
    store = EventStore(pool, schema)
    sent: list[str] = []

    def note(logged: object) -> None:
        sent.append(" ".join(logged.query.split()))  # type: ignore[attr-defined]

    async with pool.acquire() as conn:
        conn.add_query_logger(note)
        try:
            async with conn.transaction():
                await store.append("s-1", 0, [probe("s-1")], conn=conn)
                with pytest.raises(ConcurrencyError):
                    await store.append("s-1", 0, [probe("s-1")], conn=conn)  # a conflict: still one
        finally:
            conn.remove_query_logger(note)
    kinds = ["append" if "append_events" in q else "retry look-up" if "WHERE event_id = ANY" in q else q for q in sent]
    assert kinds == ["BEGIN;", "append", "append", "retry look-up", "COMMIT;"], sent


async def test_several_streams_are_read_in_one_statement(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("a", 0, [probe("a"), probe("a")])
    await store.append("b", 0, [probe("b")])
    await store.append("a", 2, [probe("a")])
    sent: list[str] = []
    async with pool.acquire() as conn:
        await store.read_streams(["a"], conn=conn)  # asyncpg learns the types once per connection
        conn.add_query_logger(lambda logged: sent.append(logged.query))
        streams = await store.read_streams(["b", "a", "none"], conn=conn)
        await asyncio.sleep(0.01)  # loggers are called soon after, from the loop
    assert len(sent) == 1, sent
    assert set(streams) == {"a", "b"}  # a stream with no events is absent
    assert streams["a"] == await store.read_stream("a") and len(streams["a"]) == 3  # version order
    assert streams["b"] == await store.read_stream("b")


async def test_append_many_is_atomic(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("b", 0, [probe("b")])
    with pytest.raises(ConcurrencyError):
        await store.append_many([StreamAppend("a", 0, [probe("a")]), StreamAppend("b", 0, [probe("b")])])
    assert await store.read_stream("a") == []


async def test_outbox_rows_commit_with_events(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema, topic_prefix="x.")
    await store.append("s-1", 0, [probe("s-1")])
    topic = await pool.fetchval(f"SELECT topic FROM {schema}.outbox")
    assert topic == "x.binome.platform.events"


async def test_read_all_walks_the_log_in_commit_order(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    for i in range(5):
        await store.append(f"s-{i}", 0, [probe(f"s-{i}", i)])
    seen = [s async for s in store.iterate_all(batch=2)]
    assert [s.envelope.data["value"] for s in seen] == [0, 1, 2, 3, 4]
    after = await store.read_all(seen[2].checkpoint)
    assert [s.envelope.data["value"] for s in after] == [3, 4]


async def test_read_all_never_passes_an_uncommitted_transaction(pool: asyncpg.Pool, schema: str) -> None:
    """The classic gap: position 1 is taken by a slow transaction, position 2
    commits first. A reader must not return 2 and move past 1."""
    store = EventStore(pool, schema)
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        await store.append("slow", 0, [probe("slow")], conn=slow)
        await store.append("fast", 0, [probe("fast")])
        assert await store.read_all() == []  # fast is held back behind slow
        await tx.commit()
    seen = await store.read_all()
    assert [s.envelope.subject for s in seen] == ["slow", "fast"]


async def test_migrations_are_versioned_and_idempotent(pool: asyncpg.Pool, schema: str) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn, schema) == []
        names = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY name")
    # Every event-store migration file, applied once, in file order (the list grows).
    expected = [m.name for m in load_migrations(EVENT_STORE_MIGRATIONS)]
    assert expected[:2] == ["0:0001_event_store.sql", "0:0002_idempotency_keys.sql"]
    assert [r["name"] for r in names] == expected


async def test_republish_all_queues_the_whole_log(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("s-1", 0, [probe("s-1"), probe("s-1")])
    await pool.execute(f"DELETE FROM {schema}.outbox")
    assert await store.republish_all() == 2
    assert await store.republish_all() == 0
    assert Checkpoint() < Checkpoint(1, 0)


async def test_iterate_log_exclusively_reads_everything_while_writers_wait(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    for i in range(5):
        await store.append(f"s-{i % 2}", None, [probe(f"s-{i % 2}", i)])
    async with pool.acquire() as conn, conn.transaction():
        seen = [e.data["value"] async for e in store.iterate_log_exclusively(conn, batch=2)]
        writer = asyncio.create_task(store.append("late", 0, [probe("late")]))
        await asyncio.sleep(0.2)
        assert not writer.done()  # appends wait for the rebuild's transaction
    await writer
    assert seen == [0, 1, 2, 3, 4]
    assert len(await store.read_stream("late")) == 1


async def test_retry_inside_a_callers_transaction_replays_and_leaves_it_usable(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    batch = [probe("s-1", 1)]
    await store.append("s-1", 0, batch)
    async with pool.acquire() as conn, conn.transaction():
        retried = await store.append("s-1", 0, batch, conn=conn)  # the append failed in a savepoint
        other = await store.append("s-2", 0, [probe("s-2")], conn=conn)  # the transaction goes on
    assert retried.replayed and retried.version == 1
    assert other.version == 1 and len(await store.read_stream("s-2")) == 1


async def test_an_append_partly_stored_already_is_not_a_retry(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    stored = probe("s-1", 1)
    await store.append("s-1", 0, [stored])
    with pytest.raises(DuplicateEventError):
        await store.append("s-1", 1, [stored, probe("s-1", 2)])
    assert len(await store.read_stream("s-1")) == 1


async def test_an_expected_version_ahead_of_the_stream_writes_nothing(pool: asyncpg.Pool, schema: str) -> None:
    """No version gap: expecting 3 on a stream at 1 is a conflict, not version 4."""
    store = EventStore(pool, schema)
    await store.append("s-1", 0, [probe("s-1")])
    with pytest.raises(ConcurrencyError) as raised:
        await store.append_many([StreamAppend("s-2", 0, [probe("s-2")]), StreamAppend("s-1", 3, [probe("s-1")])])
    assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("s-1", 3, 1)
    assert await store.read_stream("s-2") == []
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 1


async def test_appended_sequences_are_stamped_in_the_stored_envelopes(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    await store.append("s-1", None, [probe("s-1", 1)])
    result = await store.append("s-1", None, [probe("s-1", 2), probe("s-1", 3)])
    assert [e.sequence for e in result.events] == [2, 3]
    stored = await pool.fetch(f"SELECT version, (envelope->>'streamversion')::int AS seq FROM {schema}.events ORDER BY position")
    assert [(r["version"], r["seq"]) for r in stored] == [(1, 1), (2, 2), (3, 3)]


async def test_a_retried_append_is_not_counted_again(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema, service=schema)
    batch = [probe("s-1", 1), probe("s-1", 2)]
    labels = {"service": schema, "type": batch[0].type}

    def appended() -> float:
        return REGISTRY.get_sample_value("binome_events_appended_total", labels) or 0.0

    await store.append("s-1", 0, batch)
    await store.append("s-1", 0, batch)
    assert appended() == 2


async def test_the_relay_is_woken_after_commit_and_never_for_a_rollback(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema)
    notified: asyncio.Queue[str] = asyncio.Queue()
    woken: list[str] = []

    def on_notify(_conn, _pid, channel: str, _payload: str) -> None:
        notified.put_nowait(channel)

    async with pool.acquire() as listener:
        await listener.add_listener(notify_channel(schema), on_notify)
        try:
            await store.append("auto", 0, [probe("auto")])  # autocommit: NOTIFY after the commit
            await asyncio.wait_for(notified.get(), timeout=10)
            async with pool.acquire() as conn:
                with pytest.raises(RuntimeError):
                    async with conn.transaction():
                        await store.append("rolled-back", 0, [probe("rolled-back")], conn=conn)
                        raise RuntimeError("the command failed")
            with local_relay(pool, schema, lambda: woken.append("local")):
                await store.append("local", 0, [probe("local")])  # a relay in this process: no NOTIFY
            await store.append("last", 0, [probe("last")])
            await asyncio.wait_for(notified.get(), timeout=10)  # the one for "last"
            assert notified.empty()  # nothing for the rollback nor for the local wake-up
        finally:
            await listener.remove_listener(notify_channel(schema), on_notify)
    assert woken == ["local"]

"""``binome replay`` reads the event stores directly (libs/messaging/replayer.py):
beside a live consumer it applies nothing twice, it publishes nothing, it
waits for a transaction that commits late instead of skipping it, and it
shows its progress."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

from libs.database import create_pool
from libs.eventstore.store import EventStore, StreamAppend
from libs.messaging.consumer import ConsumerRunner, rebuild
from libs.messaging.relay import OutboxRelay
from libs.messaging.replayer import Replayer, Source
from libs.messaging.watermarks import Subscription, Watermarks
from libs.runtime.replay import replay
from libs.runtime.replay_progress import replay_progress, summary
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings
from tests.support.databases import fresh_database
from tests.support.events import probe
from tests.support.insights import SOURCES, health_scenario
from tests.support.kafka import wait_for
from tests.support.projections import ProbeTally, tally_count

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def tally(pool: asyncpg.Pool, schema: str) -> ProbeTally:
    projection = ProbeTally(schema)
    await projection.create(pool)
    return projection


async def append_probes(store: EventStore, first: int, n: int, per_append: int = 10) -> None:
    for start in range(first, first + n, per_append):
        events = [probe(f"s{v}", v) for v in range(start, min(start + per_append, first + n))]
        await store.append_many([StreamAppend(e.subject, None, [e]) for e in events])


def replayer(pool: asyncpg.Pool, schema: str, tally: ProbeTally, store: EventStore, **kw) -> Replayer:
    return Replayer(pool, schema, tally, [Source("platform", store)], poll_s=0.02, **kw)


async def test_a_replay_beside_the_live_consumer_applies_every_event_exactly_once(
    pool, schema, tally, kafka_bootstrap, topic_prefix
) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    live = ConsumerRunner(pool, schema, tally, kafka_bootstrap, topic_prefix=topic_prefix, session_timeout_ms=1000)
    relay = OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.02)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(live.run(stop)), asyncio.create_task(relay.run(stop))]
    try:
        await live.wait_assigned()
        await append_probes(store, 0, 300)
        await wait_for(lambda: tally_count(pool, tally, 300), timeout=60)

        async def rebuild_and_replay():
            await rebuild(pool, schema, tally)
            return await replayer(pool, schema, tally, store, batch_size=40).run()

        # Events keep arriving through the relay and the live consumer while
        # the replay reads the store: both may hold the same event.
        replaying = asyncio.create_task(rebuild_and_replay())
        await append_probes(store, 300, 300, per_append=5)
        done = await replaying
        rows = await wait_for(lambda: tally_count(pool, tally, 600), timeout=60)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert sorted(r["value"] for r in rows) == list(range(600))
    assert {r["times"] for r in rows} == {1}  # nothing applied twice since the rebuild
    assert done.read >= 300 and done.applied + done.skipped == done.read
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.applied_events") == 600


async def test_a_replay_publishes_nothing(pool, schema, tally, kafka_bootstrap, topic_prefix) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    await append_probes(store, 0, 50)
    relay = OutboxRelay(pool, schema, kafka_bootstrap)
    try:
        assert await relay.publish_pending() == 50  # the log on the topic, the outbox empty
    finally:
        await relay.close()
    topic = f"{topic_prefix}binome.platform.events"
    watcher = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await watcher.start()
    try:
        await watcher.topics()  # fetches the metadata
        watcher.assign([TopicPartition(topic, p) for p in sorted(watcher.partitions_for_topic(topic) or ())])
        read = 0
        while read < 50:  # the topic read to its end
            read += sum(len(records) for records in (await watcher.getmany(timeout_ms=1000)).values())

        await rebuild(pool, schema, tally)
        done = await replayer(pool, schema, tally, store).run()

        assert (done.read, done.applied) == (50, 50)
        assert len(await tally.rows(pool)) == 50
        assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
        assert await watcher.getmany(timeout_ms=1500) == {}  # no record reached the broker
        # The consumer's watermark (forgotten by the rebuild) walks to the end again.
        standing = await Watermarks(pool).advance(Subscription("test", schema, tally.name, schema))
        assert standing.backlog_events == 0 and standing.watermark == (await store.read_all(limit=100))[-1].checkpoint
    finally:
        await watcher.stop()


async def test_a_transaction_committing_late_is_waited_for_not_skipped(pool, schema, tally) -> None:
    store = EventStore(pool, schema)
    await append_probes(store, 0, 5)
    async with pool.acquire() as late:
        transaction = late.transaction()
        await transaction.start()
        await store.append("s-late", None, [probe("s-late", 100)], conn=late)  # its position comes first...
        await store.append("s-after", None, [probe("s-after", 101)])  # ...this one commits first

        await rebuild(pool, schema, tally)
        replaying = asyncio.create_task(replayer(pool, schema, tally, store).run())
        await asyncio.sleep(0.5)
        assert not replaying.done()  # it waits: both events sit behind the open transaction
        await transaction.commit()
        done = await asyncio.wait_for(replaying, timeout=30)

    assert done.read == 7
    assert sorted(r["value"] for r in await tally.rows(pool)) == [0, 1, 2, 3, 4, 100, 101]


async def test_binome_replay_shows_its_progress_and_what_it_applied(pool, schema, tally, tmp_path) -> None:
    store = EventStore(pool, schema)
    await append_probes(store, 0, 30)
    tally.contexts = (schema,)  # this test's service is its own source context
    service = ServiceDefinition(schema, create_app=lambda ctx: None, projections=lambda ctx: [tally])
    screen = io.StringIO()
    progress = replay_progress(Console(file=screen, width=120, force_terminal=False))
    with progress:
        done = await replay(pool, Settings(data_dir=tmp_path), [service], schema, progress=progress, batch_size=7)
    shown = screen.getvalue()
    assert "probe-tally" in shown and "30/30" in shown and "events/s" in shown
    (line,) = summary(done)
    assert line.startswith("probe-tally: 30 events applied, 0 applied already by the live consumer")
    assert len(await tally.rows(pool)) == 30


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_binome_replay_command_rebuilds_insights_from_the_stores(database_url, tmp_path, workers) -> None:
    """The command as users run it, on a database of its own (the real schema
    names); with ``--workers 2`` the log is split between two processes by stream."""
    async with fresh_database(database_url, "t_replay_cli") as url:
        env = {**os.environ, "BINOME_DATABASE_URL": url, "BINOME_DATA_DIR": str(tmp_path)}
        migrated = subprocess.run([sys.executable, "-m", "libs.cli", "migrate"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        sc, _ = health_scenario()
        async with await create_pool(url, min_size=1, max_size=2) as pool:
            for stream, envelope in sc.events:
                await EventStore(pool, envelope.context).append(stream, None, [envelope])

        done = subprocess.run([sys.executable, "-m", "libs.cli", "replay", "insights", "--workers", str(workers)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        total = len(sc.events)
        assert f"insights: {total} events applied, 0 applied already by the live consumer" in done.stdout
        assert "events/s" in done.stderr  # the progress bar
        assert ("2 processes)" in done.stdout) is (workers == 2)

        async with await create_pool(url, min_size=1, max_size=2) as pool:
            assert await pool.fetchval("SELECT count(*) FROM insights.applied_events") == total
            assert await pool.fetchval("SELECT count(*) FROM insights.pairs") == 9
            outboxes = [await pool.fetchval(f"SELECT count(*) FROM {c}.outbox") for c in SOURCES]
            assert outboxes == [total_of(sc, c) for c in SOURCES]  # only what the appends queued


def total_of(sc, context: str) -> int:
    return sum(1 for _, envelope in sc.events if envelope.context == context)


async def test_a_replay_parks_what_cannot_apply_skips_unknown_types_and_retries_transient_faults(
    pool, schema, tally
) -> None:
    store = EventStore(pool, schema)
    await append_probes(store, 0, 10)
    newer = probe("s-new", 50).model_copy(update={"type": "binome.platform.ProbeRecorded.v99"})
    invalid = probe("s-bad", 51).model_copy(update={"data": {"probe": "s-bad", "value": "not a number"}})
    for envelope in (newer, invalid):
        await store.append(envelope.subject, None, [envelope])
    tally.poison = {3}  # the projection refuses it, every time
    tally.fail_first = {7}  # a transient fault (a lost connection) the first time

    await rebuild(pool, schema, tally)
    done = await replayer(pool, schema, tally, store, batch_size=5).run()

    assert (done.read, done.applied, done.unknown, done.parked) == (12, 9, 1, 2)
    rows = await tally.rows(pool)
    assert sorted(r["value"] for r in rows) == [0, 1, 2, 4, 5, 6, 7, 8, 9] and {r["times"] for r in rows} == {1}
    parked = await pool.fetch(
        f"SELECT event_id, reason, partition, record_value FROM {schema}.dead_letters WHERE consumer = $1 ORDER BY reason",
        tally.name,
    )
    assert [r["reason"].split(":")[0] for r in parked] == ["ValueError", "invalid"]
    assert {r["partition"] for r in parked} == {-1}  # from the store, not from a topic
    outcomes = dict(await pool.fetch(f"SELECT event_id, outcome FROM {schema}.applied_events"))
    assert outcomes[newer.id] == "applied" and outcomes[invalid.id] == "dead_lettered"
    assert len(outcomes) == 12  # every event claimed: the watermark passes them all


async def test_a_stream_replays_in_version_order_even_when_transaction_ids_say_otherwise(pool, schema, tally) -> None:
    """A request that claimed its idempotency key first holds an early
    transaction id; the next version it appends then has a lower id than the
    version before it. Position order keeps the stream's order."""
    store = EventStore(pool, schema)
    async with pool.acquire() as early:
        async with early.transaction():
            await early.fetchval("SELECT pg_current_xact_id()")  # its id, taken before the other append
            await store.append("s", 0, [probe("s", 1)])  # version 1, a later transaction id, committed
            await store.append("s", 1, [probe("s", 2)], conn=early)  # version 2
    ids = await pool.fetch(f"SELECT version, transaction_id::text::bigint AS tx FROM {schema}.events ORDER BY version")
    assert ids[1]["tx"] < ids[0]["tx"]  # the case in point

    await rebuild(pool, schema, tally)
    done = await replayer(pool, schema, tally, store).run()

    assert done.applied == 2 and list(tally.attempts) == [1, 2]  # version 1 applied first


async def test_the_parts_of_a_partitioned_replay_read_every_event_once_across_gaps_in_positions(
    pool, schema, tally
) -> None:
    """Each part reads ranges of positions (``_Log._next_range``): a range
    holding none of its events, here a gap far wider than a range, does not
    end its log; the last position does. A transaction still running at the
    snapshot is read apart, by the part its stream falls in."""
    store = EventStore(pool, schema)
    await append_probes(store, 0, 30)
    await pool.execute(f"SELECT setval(pg_get_serial_sequence('{schema}.events', 'position'),"
                       f" (SELECT max(position) FROM {schema}.events) + 1000)")
    await append_probes(store, 30, 10)
    async with pool.acquire() as late:
        transaction = late.transaction()
        await transaction.start()
        await store.append("s-late", None, [probe("s-late", 100)], conn=late)
        await rebuild(pool, schema, tally)
        snapshots = await replayer(pool, schema, tally, store).take_snapshots()
        await transaction.commit()

    parts = [await replayer(pool, schema, tally, store, batch_size=4, partition=(index, 2), snapshots=snapshots).run()
             for index in range(2)]

    assert all(part.read > 0 for part in parts)  # the probes' streams fall in both parts
    assert sum(part.read for part in parts) == 41
    assert sorted(r["value"] for r in await tally.rows(pool)) == [*range(40), 100]

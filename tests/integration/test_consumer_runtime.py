"""The consumer runtime: idempotent, crash-safe, with a dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import asyncpg
import orjson
import pytest

from libs.events import topic_for_context
from libs.events.serialization import dumps
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner, rebuild
from libs.messaging.kafka import dead_letter_topic
from libs.messaging.relay import OutboxRelay
from libs.observability import metrics
from tests.support.events import probe
from tests.support.kafka import produce, read_topic, wait_for
from tests.support.projections import ProbeTally, tally_count

pytestmark = pytest.mark.integration


class SimulatedCrash(BaseException):
    """Escapes every ``except Exception``: the process is gone at this point."""


def runner(pool, schema, projection, bootstrap, prefix, **kw) -> ConsumerRunner:
    return ConsumerRunner(
        pool, schema, projection, bootstrap, topic_prefix=prefix,
        session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01, **kw,
    )


@pytest.fixture
async def tally(pool: asyncpg.Pool, schema: str) -> ProbeTally:
    projection = ProbeTally(schema, name=f"tally-{uuid.uuid4().hex[:8]}")
    await projection.create(pool)
    return projection


async def test_crash_after_db_commit_before_offset_commit_applies_once(
    pool, schema, kafka_bootstrap, topic_prefix, tally
) -> None:
    envelopes = [probe(f"s{i % 4}", i) for i in range(40)]
    topic = topic_for_context("platform", topic_prefix)
    await produce(kafka_bootstrap, topic, [dumps(e) for e in envelopes], [e.subject for e in envelopes])

    async def crash(_offsets):
        raise SimulatedCrash()

    stop = asyncio.Event()
    first = runner(pool, schema, tally, kafka_bootstrap, topic_prefix, after_db_commit=crash)
    with pytest.raises(SimulatedCrash):
        await first.run(stop)
    applied_before_restart = len(await tally.rows(pool))
    assert applied_before_restart > 0  # the DB committed, the offsets did not

    second = runner(pool, schema, tally, kafka_bootstrap, topic_prefix)
    task = asyncio.create_task(second.run(stop))
    rows = await wait_for(lambda: tally_count(pool, tally, 40))
    await asyncio.sleep(0.5)  # let any redelivered duplicate arrive
    stop.set()
    await task
    rows = await tally.rows(pool)
    assert len(rows) == 40
    assert {r["times"] for r in rows} == {1}
    assert sorted(r["value"] for r in rows) == list(range(40))


async def test_relay_duplicate_on_the_wire_has_no_second_effect(
    pool, schema, kafka_bootstrap, topic_prefix, tally
) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    for i in range(10):
        await store.append(f"s{i}", 0, [probe(f"s{i}", i)])

    async def crash(_positions):
        raise SimulatedCrash()

    stop = asyncio.Event()
    with pytest.raises(SimulatedCrash):  # sent to Kafka, then died before deleting the rows
        await OutboxRelay(pool, schema, kafka_bootstrap, after_publish=crash).run(stop)
    relay_task = asyncio.create_task(OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.05).run(stop))
    consumer_task = asyncio.create_task(runner(pool, schema, tally, kafka_bootstrap, topic_prefix).run(stop))

    on_wire = await read_topic(kafka_bootstrap, topic_for_context("platform", topic_prefix), until=20)
    assert len(on_wire) == 20  # every event twice
    await wait_for(lambda: tally_count(pool, tally, 10))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(relay_task, consumer_task)
    rows = await tally.rows(pool)
    assert len(rows) == 10 and {r["times"] for r in rows} == {1}


async def test_transient_failure_is_retried_and_poison_is_dead_lettered(
    pool, schema, kafka_bootstrap, topic_prefix, tally
) -> None:
    tally.fail_first = {3}
    tally.poison = {5}
    envelopes = [probe("one-stream", i) for i in range(10)]
    topic = topic_for_context("platform", topic_prefix)
    garbage = b"not json at all"
    await produce(
        kafka_bootstrap,
        topic,
        [dumps(e) for e in envelopes] + [garbage],
        [e.subject for e in envelopes] + ["one-stream"],
        positions=[100 + i for i in range(10)] + [None],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner(pool, schema, tally, kafka_bootstrap, topic_prefix, max_attempts=3).run(stop))
    await wait_for(lambda: tally_count(pool, tally, 9))
    dead = await read_topic(kafka_bootstrap, dead_letter_topic(topic_prefix), until=2)
    stop.set()
    await task

    rows = await tally.rows(pool)
    assert sorted(r["value"] for r in rows) == [0, 1, 2, 3, 4, 6, 7, 8, 9]  # later events flowed
    assert {r["times"] for r in rows} == {1}
    # 3 failed transiently: the batch was rolled back and fetched again (each
    # earlier call undone, so applied once); 5 was tried max_attempts times.
    assert tally.attempts[3] >= 2
    assert tally.attempts[5] == 3
    assert len(dead) == 2
    headers = [dict(r.headers) for r in dead]
    poison = next(h for h, r in zip(headers, dead) if r.value != garbage)
    assert orjson.loads(next(r.value for r in dead if r.value != garbage))["data"]["value"] == 5
    assert b"poison value 5" in poison["reason"]
    # Still a structured CloudEvent for any CloudEvents Kafka binding, with its source position.
    assert poison["content-type"] == b"application/cloudevents+json; charset=utf-8"
    assert poison["binome-position"] == b"105"
    assert poison["consumer"] == tally.name.encode()
    assert any(h["reason"].startswith(b"undecodable") for h in headers)
    recorded = await pool.fetchrow(
        f"SELECT outcome, reason FROM {schema}.applied_events WHERE event_id = $1", envelopes[5].id
    )
    assert recorded["outcome"] == "dead_lettered" and "poison" in recorded["reason"]
    # Parked in PostgreSQL too, with the record itself: redrivable with no broker.
    parked = await pool.fetch(
        f"""SELECT event_id, event_type, source_position, reason, attempts, record_value
            FROM {schema}.dead_letters WHERE consumer = $1 ORDER BY event_id NULLS LAST""",
        tally.name,
    )
    assert [(r["event_id"], r["source_position"], r["attempts"]) for r in parked] == [
        (envelopes[5].id, 105, 3),
        (None, None, 0),
    ]
    assert parked[0]["event_type"] == envelopes[5].type and "poison value 5" in parked[0]["reason"]
    assert parked[1]["reason"].startswith("undecodable") and parked[1]["record_value"] == garbage


async def test_rebuild_from_the_log_equals_the_live_model(pool, schema, kafka_bootstrap, topic_prefix, tally) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    for i in range(30):
        await store.append(f"s{i % 5}", None, [probe(f"s{i % 5}", i)])
    stop = asyncio.Event()
    relay_task = asyncio.create_task(OutboxRelay(pool, schema, kafka_bootstrap, poll_interval_s=0.05).run(stop))
    consumer_task = asyncio.create_task(runner(pool, schema, tally, kafka_bootstrap, topic_prefix).run(stop))
    await wait_for(lambda: tally_count(pool, tally, 30))
    live = [dict(r) for r in await tally.rows(pool)]

    await rebuild(pool, schema, tally)
    assert await tally.rows(pool) == []
    await store.republish_all()
    rebuilt = await wait_for(lambda: tally_count(pool, tally, 30))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(relay_task, consumer_task)
    assert [dict(r) for r in await tally.rows(pool)] == live
    assert len(rebuilt) == 30


async def test_two_runners_holding_the_same_events_apply_them_once(pool, schema, tally) -> None:
    """During a group rebalance two members may hold the same records at once."""
    from aiokafka import ConsumerRecord

    envelopes = [probe(f"s{i}", i) for i in range(20)]
    records = [
        ConsumerRecord("t", 0, i, 0, 0, e.subject.encode(), dumps(e), None, 0, 0, [])
        for i, e in enumerate(envelopes)
    ]
    first = runner(pool, schema, tally, "unused:9092", "x.")
    second = runner(pool, schema, tally, "unused:9092", "x.")
    outcomes = await asyncio.gather(first._apply_batch(None, records), second._apply_batch(None, records))
    assert sum(o.applied for o in outcomes) == 20
    assert sum(o.skipped for o in outcomes) == 20 and sum(o.dead for o in outcomes) == 0
    rows = await tally.rows(pool)
    assert len(rows) == 20 and {r["times"] for r in rows} == {1}


async def test_projection_lag_counts_from_publishing_when_the_event_is_dated_ahead(
    pool, schema, kafka_bootstrap, topic_prefix, tally
) -> None:
    """The dev clock dates events weeks ahead of the wall clock: the lag then
    counts from when the record was published, not from a 'time' to come
    (which read as 0 for ever)."""
    ahead = probe("ahead", 1)
    ahead = ahead.model_copy(update={"time": ahead.time + timedelta(days=60)})
    await produce(kafka_bootstrap, topic_for_context("platform", topic_prefix), [dumps(ahead)], [ahead.subject])
    await asyncio.sleep(0.2)  # some lag to measure
    stop = asyncio.Event()
    consumer = runner(pool, schema, tally, kafka_bootstrap, topic_prefix, service="lag-test")
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(lambda: tally_count(pool, tally, 1))
    stop.set()
    await task
    lag = metrics.PROJECTION_LAG_SECONDS.labels("lag-test", tally.name)._value.get()
    assert 0.2 <= lag < 60


async def test_the_log_says_when_a_runner_got_its_partitions_and_applied_again(
    pool, schema, kafka_bootstrap, topic_prefix, tally, caplog
) -> None:
    """After a broker restart or a rejoin, what a consumer holds and when it
    applied again is in the log: silence there is a consumer that never
    resumed. A second member joining takes partitions from the first: both
    say what they hold, and each its first batch after the assignment."""
    caplog.set_level(logging.INFO, logger="libs.messaging.consumer")
    topic = topic_for_context("platform", topic_prefix)
    stop = asyncio.Event()
    first = runner(pool, schema, tally, kafka_bootstrap, topic_prefix)
    task = asyncio.create_task(first.run(stop))
    await first.wait_assigned()
    assigned = [r.getMessage() for r in caplog.records if "partitions assigned" in r.getMessage()]
    assert assigned == [f"{tally.name}: partitions assigned: {topic}[0,1,2]"]
    assert not [r for r in caplog.records if "first batch" in r.getMessage()]  # nothing applied yet

    envelopes = [probe(f"s{i}", i) for i in range(6)]
    await produce(kafka_bootstrap, topic, [dumps(e) for e in envelopes], [e.subject for e in envelopes])
    await wait_for(lambda: tally_count(pool, tally, 6))
    more = [probe(f"t{i}", 100 + i) for i in range(6)]
    await produce(kafka_bootstrap, topic, [dumps(e) for e in more], [e.subject for e in more])
    await wait_for(lambda: tally_count(pool, tally, 12))
    firsts = [r.getMessage() for r in caplog.records if "first batch" in r.getMessage()]
    assert len(firsts) == 1 and firsts[0].startswith(f"{tally.name}: first batch since the assignment applied")

    second = runner(pool, schema, tally, kafka_bootstrap, topic_prefix)
    joined = asyncio.create_task(second.run(stop))
    await second.wait_assigned()

    async def shared() -> bool:  # the rebalance done: the three partitions split between them
        held = [runner._consumer.assignment() if runner._consumer else set() for runner in (first, second)]
        return all(held) and sum(map(len, held)) == 3

    await wait_for(shared)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{tally.name}: partitions revoked: {topic}[0,1,2]") for m in messages), messages
    assert len([m for m in messages if "partitions assigned" in m]) >= 3, messages  # first, then both members
    stop.set()
    await asyncio.gather(task, joined)

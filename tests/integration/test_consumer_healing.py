"""The consumer runtime heals from transient faults and parks only what can
never apply; parked events are redriven from PostgreSQL, with no broker.

Against real PostgreSQL and a real broker: a read-model table that refuses
writes for a while (a CHECK constraint added, then dropped, from another
connection) is the fault that was reported.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from libs.events import topic_for_context
from libs.events.serialization import dumps
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.deadletters import Redriver
from libs.messaging.kafka import dead_letter_topic
from libs.observability import metrics
from libs.runtime.redrive import redrive
from libs.runtime.replay import UnknownReadModel
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings
from tests.support.events import probe
from tests.support.kafka import dead_letter_producer, produce, read_topic, wait_for
from tests.support.projections import ProbeTally, tally_count

pytestmark = pytest.mark.integration


@pytest.fixture
async def producer(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[AIOKafkaProducer]:
    async with dead_letter_producer(kafka_bootstrap, topic_prefix) as producer:
        yield producer


@pytest.fixture
async def tally(pool: asyncpg.Pool, schema: str) -> ProbeTally:
    projection = ProbeTally(schema, name=f"tally-{uuid.uuid4().hex[:8]}")
    await projection.create(pool)
    return projection


def sample(counter, *labels: str) -> float:
    return counter.labels(*labels)._value.get()


async def parked_rows(pool: asyncpg.Pool, schema: str, consumer: str) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT * FROM {schema}.dead_letters WHERE consumer = $1 ORDER BY id", consumer)


async def test_a_table_refusing_writes_for_a_while_heals_with_nothing_parked(
    pool, schema, kafka_bootstrap, topic_prefix, tally
) -> None:
    service = f"heal-{uuid.uuid4().hex[:6]}"
    await pool.execute(f"ALTER TABLE {schema}.probe_tally ADD CONSTRAINT refuse_writes CHECK (value < 0) NOT VALID")
    envelopes = [probe(f"s{i % 3}", i) for i in range(20)]
    await produce(
        kafka_bootstrap, topic_for_context("platform", topic_prefix), [dumps(e) for e in envelopes],
        [e.subject for e in envelopes],
    )
    stop = asyncio.Event()
    runner = ConsumerRunner(
        pool, schema, tally, kafka_bootstrap, service=service, topic_prefix=topic_prefix, session_timeout_ms=1000,
        retry_backoff_s=0.01, retry_max_backoff_s=0.2,
    )
    task = asyncio.create_task(runner.run(stop))
    # It keeps failing while the table refuses writes, and parks nothing.
    await wait_for(lambda: _at_least(sample(metrics.CONSUMER_TRANSIENT_FAILURES, service, tally.name), 5))
    assert await tally.rows(pool) == []
    assert await parked_rows(pool, schema, tally.name) == []

    await pool.execute(f"ALTER TABLE {schema}.probe_tally DROP CONSTRAINT refuse_writes")
    await wait_for(lambda: tally_count(pool, tally, 20))
    await asyncio.sleep(0.3)  # let any redelivery arrive
    stop.set()
    await task

    rows = await tally.rows(pool)
    assert sorted(r["value"] for r in rows) == list(range(20)) and {r["times"] for r in rows} == {1}
    assert await parked_rows(pool, schema, tally.name) == []
    outcomes = await pool.fetch(f"SELECT DISTINCT outcome FROM {schema}.applied_events WHERE consumer = $1", tally.name)
    assert [r["outcome"] for r in outcomes] == ["applied"]


async def _at_least(value: float, n: float) -> bool:
    return value >= n


def records_of(values: list[bytes]) -> list[ConsumerRecord]:
    return [ConsumerRecord("t.binome.platform.events", 0, i, 0, 0, b"k", v, None, 0, 0, []) for i, v in enumerate(values)]


def from_the_future(envelope):
    """The same envelope with a type this registry has never heard of (a newer producer's)."""
    return envelope.model_copy(update={"type": "binome.platform.ProbeRecorded.v99"})


async def test_an_unknown_type_is_skipped_and_counted_never_parked(pool, schema, tally) -> None:
    service = f"skip-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(pool, schema, tally, "unused:9092", service=service, topic_prefix="t.")
    newer = from_the_future(probe("s-new", 99))
    outcome = await runner._apply_batch(None, records_of([dumps(probe("s1", 1)), dumps(newer), dumps(probe("s2", 2))]))

    assert (outcome.applied, outcome.dead, outcome.unknown) == (2, 0, 1)
    assert sorted(r["value"] for r in await tally.rows(pool)) == [1, 2]
    assert await parked_rows(pool, schema, tally.name) == []
    assert sample(metrics.EVENTS_SKIPPED, service, tally.name, "unknown_type") == 1
    # Claimed all the same, so the consumer's watermark passes it (lag and
    # start-up republishing would otherwise stop at it for ever).
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.applied_events WHERE event_id = $1", newer.id) == 1
    again = await runner._apply_batch(None, records_of([dumps(newer)]))
    assert (again.applied, again.unknown, again.skipped) == (0, 0, 1)  # a redelivery is a duplicate


async def test_an_invalid_payload_is_parked_at_once_without_a_handler_call(
    pool, schema, kafka_bootstrap, topic_prefix, producer, tally
) -> None:
    runner = ConsumerRunner(pool, schema, tally, kafka_bootstrap, topic_prefix=topic_prefix)
    invalid = probe("s-bad", 7).model_copy(update={"data": {"probe": "s-bad", "value": "not a number"}})

    outcome = await runner._apply_batch(producer, records_of([dumps(invalid)]))

    assert (outcome.applied, outcome.dead) == (0, 1)
    assert tally.attempts == {}  # never retried: the answer would not change
    [row] = await parked_rows(pool, schema, tally.name)
    assert row["event_id"] == invalid.id and row["attempts"] == 0 and row["reason"].startswith("invalid: ValidationError")
    assert row["tenant"] == "org-test"
    [on_topic] = await read_topic(kafka_bootstrap, dead_letter_topic(topic_prefix), until=1)
    assert on_topic.value == dumps(invalid) and dict(on_topic.headers)["attempts"] == b"0"


async def test_redrive_applies_what_now_succeeds_and_keeps_what_still_fails(
    pool, schema, kafka_bootstrap, topic_prefix, producer, tally
) -> None:
    tally.poison = {5, 6}
    runner = ConsumerRunner(pool, schema, tally, kafka_bootstrap, topic_prefix=topic_prefix, retry_backoff_s=0.001)
    envelopes = [probe(f"s{i}", i) for i in (4, 5, 6)]
    await runner._apply_batch(producer, records_of([dumps(e) for e in envelopes]))
    assert [r["attempts"] for r in await parked_rows(pool, schema, tally.name)] == [3, 3]

    redriver = Redriver(pool, schema, {tally.name: tally})
    tally.poison = {6}  # 5's cause is fixed; 6 still fails
    async with pool.acquire() as conn, conn.transaction():
        results = await redriver.redrive(conn, tally.name)

    by_event = {r.event_id: r for r in results}
    assert by_event[envelopes[1].id].outcome == "applied"
    assert by_event[envelopes[2].id].outcome == "failed"
    assert by_event[envelopes[2].id].attempts == 4 and "poison value 6" in by_event[envelopes[2].id].reason
    [kept] = await parked_rows(pool, schema, tally.name)
    assert kept["event_id"] == envelopes[2].id and kept["attempts"] == 4 and kept["last_failed_at"] > kept["first_failed_at"]
    outcome = {
        r["event_id"]: r["outcome"]
        for r in await pool.fetch(f"SELECT event_id, outcome FROM {schema}.applied_events WHERE consumer = $1", tally.name)
    }
    assert outcome == {envelopes[0].id: "applied", envelopes[1].id: "applied", envelopes[2].id: "dead_lettered"}
    rows = await tally.rows(pool)
    assert sorted(r["value"] for r in rows) == [4, 5] and {r["times"] for r in rows} == {1}

    # Redriven again once 6 is fixed, then a third time: nothing left, nothing applied twice.
    tally.poison = set()
    async with pool.acquire() as conn, conn.transaction():
        assert [r.outcome for r in await redriver.redrive(conn, tally.name, event_id=envelopes[2].id)] == ["applied"]
    async with pool.acquire() as conn, conn.transaction():
        assert await redriver.redrive(conn, tally.name) == []
    rows = await tally.rows(pool)
    assert sorted(r["value"] for r in rows) == [4, 5, 6] and {r["times"] for r in rows} == {1}


async def test_binome_redrive_finds_the_service_owning_the_consumer(
    pool, schema, kafka_bootstrap, topic_prefix, producer, tally, tmp_path
) -> None:
    """``binome redrive CONSUMER --all``, over this test's schema."""
    tally.poison = {8}
    runner = ConsumerRunner(pool, schema, tally, kafka_bootstrap, topic_prefix=topic_prefix, max_attempts=1)
    parked = probe("s8", 8)
    await runner._apply_batch(producer, records_of([dumps(parked)]))
    tally.poison = set()
    services = [
        ServiceDefinition("other_service", create_app=None, projections=lambda ctx: []),
        ServiceDefinition(schema, create_app=None, projections=lambda ctx: [tally]),  # the schema is the name
    ]
    settings = Settings(data_dir=tmp_path, vault_schema=f"{schema}_vault")

    results = await redrive(pool, settings, services, tally.name)

    assert [(r.event_id, r.outcome) for r in results] == [(parked.id, "applied")]
    assert [r["value"] for r in await tally.rows(pool)] == [8]
    assert await parked_rows(pool, schema, tally.name) == []
    with pytest.raises(UnknownReadModel):
        await redrive(pool, settings, services, "no-such-consumer")

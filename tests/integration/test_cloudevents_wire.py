"""What a non-Python receiver gets: the records on the broker, read with
librdkafka (``confluent-kafka``, the client behind most non-JVM Kafka
bindings) and parsed with the CloudEvents SDK's Kafka binding, strictly.

Strictly: the Kafka binding (section 3) decides the content mode from the
``content-type`` header alone. A record is in structured mode only when
that header names a CloudEvents event format; without it a receiver must
read it in binary mode, which needs ``ce_*`` headers Binome does not write.
The SDK's own ``from_kafka`` guesses (no ``ce_`` header: structured), so the
mode is decided here, from the header, the way Java, Go or Knative do.

Every producer is covered: the outbox relay (new events, and an event
stored in the form written before the stream version's rename) and the
dead-letter parking of a consumer.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import orjson
import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from libs.events import Envelope, topic_for_context
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.kafka import dead_letter_topic
from tests.support.events import probe
from tests.support.kafka import relay_until_empty, wait_for
from tests.support.projections import ProbeTally, tally_count

pytestmark = pytest.mark.integration

STRUCTURED = "application/cloudevents+json"


def read_with_librdkafka(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[KafkaMessage]:
    """The first ``count`` records of ``topic``, as librdkafka hands them over."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"wire-{uuid.uuid4().hex[:8]}",  # required by the client; nothing is committed
        "enable.auto.commit": False,
    })
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
        messages: list[KafkaMessage] = []
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            record = consumer.poll(0.2)
            if record is None:
                continue
            assert record.error() is None, record.error()
            messages.append(KafkaMessage(headers=dict(record.headers() or []), key=record.key(), value=record.value()))
        return messages
    finally:
        consumer.close()


def strictly(message: KafkaMessage) -> BaseCloudEvent:
    """The event a receiver that follows the Kafka binding reads."""
    content_type = message.headers.get("content-type")
    assert content_type is not None, "no content-type: binary mode, and there are no ce_ headers"
    assert content_type.decode().split(";")[0].strip() == STRUCTURED
    return from_structured(message, JSONFormat())


def assert_same(event: BaseCloudEvent, envelope: Envelope) -> None:
    assert event.get_specversion() == "1.0"
    assert event.get_id() == str(envelope.id)
    assert event.get_type() == envelope.type
    assert event.get_source() == envelope.source
    assert event.get_subject() == envelope.subject
    assert event.get_time() == envelope.time
    assert event.get_extension("tenant") == envelope.tenant
    assert event.get_extension("partitionkey") == envelope.subject  # the record key
    assert event.get_data() == envelope.data


async def test_relayed_records_are_structured_cloudevents_to_librdkafka(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    written = []
    for i in range(6):
        written.extend((await store.append(f"wire-{i % 2}", None, [probe(f"wire-{i % 2}", i)])).events)
    # One event as the previous release stored it: stream version named "sequence".
    old = written[-1]
    await pool.execute(
        f"""UPDATE {schema}.events
            SET envelope = envelope - 'streamversion' || jsonb_build_object('sequence', version)
            WHERE event_id = $1""",
        old.id,
    )
    assert (await store.read_stream(old.subject))[-1].sequence == old.sequence  # still read by Binome

    await relay_until_empty(pool, schema, kafka_bootstrap)
    topic = topic_for_context("platform", topic_prefix)
    messages = await asyncio.to_thread(read_with_librdkafka, kafka_bootstrap, topic, len(written))

    assert len(messages) == len(written)
    by_id = {str(e.id): e for e in written}
    for message in messages:
        event = strictly(message)
        envelope = by_id.pop(event.get_id())
        assert_same(event, envelope)
        assert event.get_extension("streamversion") == envelope.sequence
        assert event.get_extension("sequence") is None  # the old name is not published, even for old events
        with pytest.raises(Exception):  # noqa: B017, PT011 - binary mode has nothing to read
            from_binary(message, JSONFormat())
    assert by_id == {}


async def test_dead_lettered_records_stay_structured_cloudevents(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    tally = ProbeTally(schema, name=f"wire-{uuid.uuid4().hex[:8]}", poison={2})
    await tally.create(pool)
    store = EventStore(pool, schema, topic_prefix=topic_prefix)
    events = [(await store.append("dead-wire", i, [probe("dead-wire", i)])).events[0] for i in range(3)]
    await relay_until_empty(pool, schema, kafka_bootstrap)
    stop = asyncio.Event()
    runner = ConsumerRunner(
        pool, schema, tally, kafka_bootstrap, topic_prefix=topic_prefix,
        session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01, max_attempts=1,
    )
    task = asyncio.create_task(runner.run(stop))
    try:
        await wait_for(lambda: tally_count(pool, tally, 2))
        messages = await asyncio.to_thread(read_with_librdkafka, kafka_bootstrap, dead_letter_topic(topic_prefix), 1)
    finally:
        stop.set()
        await task

    [message] = messages
    event = strictly(message)
    assert_same(event, events[2])
    assert orjson.loads(message.value)["data"]["value"] == 2
    assert b"poison value 2" in message.headers["reason"]

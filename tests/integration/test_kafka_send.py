"""``send_keyed``: the relay's batched publishing, against the real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from libs.messaging.kafka import DEFAULT_PARTITIONS, ensure_topics, event_headers, make_producer, send_keyed
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def test_keyed_batches_land_where_the_default_partitioner_puts_them_in_order(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic, other = f"{topic_prefix}keyed", f"{topic_prefix}keyed-other"
    await ensure_topics(kafka_bootstrap, [topic, other])
    # ~1 KB values, 1,500 of them: several full record batches per partition.
    messages = [
        (topic if i % 5 else other, f"stream-{i % 40}".encode(), b"%06d" % i + b"." * 1000, event_headers(i))
        for i in range(1500)
    ]
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        acks = await send_keyed(producer, messages)
        await asyncio.gather(*acks)  # every batch acknowledged
    finally:
        await producer.stop()
    assert len(acks) > 2 * DEFAULT_PARTITIONS  # batches were split when full

    partitions = list(range(DEFAULT_PARTITIONS))
    for name in (topic, other):
        sent = [(key, value) for t, key, value, _ in messages if t == name]
        records = await read_topic(kafka_bootstrap, name, until=len(sent))
        assert sorted((r.key, r.value) for r in records) == sorted(sent)  # each exactly once
        for record in records:  # each keeps its headers: a structured CloudEvent and its position
            assert dict(record.headers) == dict(event_headers(int(record.value[:6])))
        for record in records:  # where any Kafka client's default partitioner puts that key
            assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        by_key: dict[bytes, list[bytes]] = {}
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            by_key.setdefault(record.key, []).append(record.value)
        assert by_key == {key: [v for k, v in sent if k == key] for key in by_key}  # per key: sent order


async def test_a_full_batch_goes_out_without_lingering(kafka_bootstrap: str, topic_prefix: str) -> None:
    """``send_keyed`` closes each batch it queues: the producer sends it at once
    instead of waiting ``linger_ms`` for more records (a relay pass waited for
    the linger on every pass before)."""
    topic = f"{topic_prefix}no-linger"
    await ensure_topics(kafka_bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=60_000)
    await producer.start()
    try:
        acks = await send_keyed(producer, [(topic, b"k", b"v", [])])
        # An open batch would sit in the accumulator for a minute.
        await asyncio.wait_for(asyncio.gather(*acks), timeout=15)
    finally:
        await producer.stop()

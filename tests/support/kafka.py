"""Producing records and reading a topic back in tests (no consumer group: no
join delay), and running a schema's outbox relay until it is empty."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from libs.messaging.kafka import dead_letter_topic, ensure_topics, make_producer
from libs.messaging.kafka import POSITION_HEADER
from libs.messaging.relay import OutboxRelay


async def read_topic(bootstrap: str, topic: str, *, until: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the start, once ``until`` have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {topic} does not exist")
                await consumer._client.force_metadata_update()  # noqa: SLF001
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(records) < until and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.05):
    """Poll an async predicate until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


async def relay_until_empty(pool: asyncpg.Pool, schema: str, bootstrap: str, **relay: Any) -> None:
    """Run the schema's outbox relay (``relay``: more of its settings) until
    the outbox is empty, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(OutboxRelay(pool, schema, bootstrap, poll_interval_s=0.05, **relay).run(stop))
    try:
        await wait_for(lambda: pool.fetchval(f"SELECT count(*) = 0 FROM {schema}.outbox"))
    finally:
        stop.set()
        await task


async def produce(
    bootstrap: str, topic: str, values: list[bytes], keys: list[str], positions: list[int | None] | None = None
) -> None:
    """Send ``values``; ``positions``: the relay's ``binome-position`` header of each (None: no header)."""
    await ensure_topics(bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            position = positions[i] if positions else None
            headers = [] if position is None else [(POSITION_HEADER, str(position).encode())]
            await producer.send(topic, value=value, key=key.encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


@asynccontextmanager
async def dead_letter_producer(bootstrap: str, prefix: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, the dead-letter topic of ``prefix`` created: what a
    runner handed batches directly (never started) parks records with."""
    await ensure_topics(bootstrap, [dead_letter_topic(prefix)])
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()

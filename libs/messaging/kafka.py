"""aiokafka clients configured the way Binome needs them.

Producers are plain (not idempotent, not transactional): Tansu, the embedded
broker, does not support those modes, and the design needs neither because
delivery is at-least-once and every consumer is idempotent. ``acks="all"``
keeps a published event durable on a real Kafka cluster.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

DEAD_LETTER_TOPIC = "binome.deadletter"
DEFAULT_PARTITIONS = 3

#: The CloudEvents Kafka binding reads a record as structured mode (the whole
#: event in the value) only when it carries this header; without it a
#: receiver must assume binary mode and look for ``ce_*`` headers.
CLOUDEVENTS_CONTENT_TYPE = ("content-type", b"application/cloudevents+json; charset=utf-8")
#: The event's position in its source event store: consumers record the
#: newest one they applied, so lag is measured against the log, not the broker.
POSITION_HEADER = "binome-position"

Headers = list[tuple[str, bytes]]


def event_headers(position: int | None = None) -> Headers:
    """The headers of a record that carries one event (structured CloudEvent)."""
    headers = [CLOUDEVENTS_CONTENT_TYPE]
    if position is not None:
        headers.append((POSITION_HEADER, str(position).encode()))
    return headers


def position_of(headers: Sequence[tuple[str, bytes | None]] | None) -> int | None:
    """The source position a record carries (ASCII decimal), or None when absent or not a number."""
    for name, value in headers or ():
        if name == POSITION_HEADER and value is not None:
            text = bytes(value).decode("ascii", "replace")
            return int(text) if text.isdigit() else None
    return None


@dataclass(frozen=True)
class TopicSpec:
    """How the relay and the consumers create a topic that does not exist
    yet (``BINOME_KAFKA_TOPIC_PARTITIONS``, ``BINOME_KAFKA_REPLICATION_FACTOR``).
    Topics created beforehand keep their own settings."""

    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1


def dead_letter_topic(prefix: str = "") -> str:
    return f"{prefix}{DEAD_LETTER_TOPIC}"


def make_producer(bootstrap: str, *, request_timeout_ms: int = 10_000) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=request_timeout_ms,
        compression_type=None,
    )


def make_consumer(
    bootstrap: str,
    group_id: str,
    topics: list[str],
    *,
    session_timeout_ms: int = 6000,
    fetch_max_wait_ms: int = 50,
    listener: ConsumerRebalanceListener | None = None,
) -> AIOKafkaConsumer:
    """A consumer of ``group_id`` subscribed to ``topics``; ``listener`` hears
    its partitions revoked and assigned at every rebalance."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed after the DB transaction
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 6),
        # Tansu does not wake a waiting fetch when data arrives: keep it short.
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_poll_records=2000,
    )
    consumer.subscribe(topics, listener=listener)
    return consumer


async def ensure_topics(bootstrap: str, topics: list[str], spec: TopicSpec = TopicSpec()) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=spec.partitions, replication_factor=spec.replication_factor) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # created concurrently: what we wanted
    finally:
        await admin.close()


#: ApiVersions v0 (api key 18), correlation id 1, client id "binome-probe":
#: the request every Kafka client sends first, answered by any broker.
_API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 1, 12) + b"binome-probe"


async def broker_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Kafka broker answers at ``host:port`` (one ApiVersions round trip).

    Cheaper than a client (no metadata, no group) and stricter than a TCP
    connect: a port held by something else, or a broker that accepts but
    never answers, is not a broker.
    """
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(struct.pack(">i", len(_API_VERSIONS_V0)) + _API_VERSIONS_V0)
        _size, correlation = struct.unpack(">ii", await asyncio.wait_for(reader.readexactly(8), timeout))
        return correlation == 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error):
        return False
    finally:
        if writer is not None:
            writer.close()


@lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    """The hash Kafka's default partitioner uses (aiokafka's murmur2 is pure
    Python: cached, since a stream's key comes back with each of its events)."""
    return murmur2(key) & 0x7FFFFFFF


async def send_keyed(
    producer: AIOKafkaProducer, messages: Iterable[tuple[str, bytes, bytes, Headers]]
) -> list[asyncio.Future]:
    """Queue ``(topic, key, value, headers)`` messages as record batches, one per
    partition at a time; return the futures of their acknowledgements.

    The same result as ``producer.send`` per message, at a fraction of its
    Python cost: a key lands on the partition Kafka's default partitioner
    picks, and each partition keeps the order of ``messages``.
    """
    partitions: dict[str, list[int]] = {}
    open_batches: dict[tuple[str, int], BatchBuilder] = {}
    acks: list[asyncio.Future] = []
    for topic, key, value, headers in messages:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        candidates = partitions[topic]
        target = (topic, candidates[_key_hash(key) % len(candidates)])
        batch = open_batches.get(target)
        if batch is None or batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            if batch is not None:  # full: queue it, then start the partition's next batch
                acks.append(await _queue(producer, batch, *target))
            batch = open_batches[target] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError(f"a message of {len(value)} bytes does not fit in a record batch")
    for (topic, partition), batch in open_batches.items():
        acks.append(await _queue(producer, batch, topic, partition))
    return acks


async def _queue(producer: AIOKafkaProducer, batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future:
    # Closed: the batch is complete, so the producer sends it at once instead
    # of lingering (``linger_ms``) for records that will not come.
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)

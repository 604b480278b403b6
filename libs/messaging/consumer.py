"""The consumer runtime: Kafka records -> a projection's read model, exactly
once in effect.

For each batch fetched from the consumer group:

1. one database transaction; per record a savepoint in which the handler runs
   and ``applied_events`` records the event id (so the read-model change and
   the record of what was applied commit together);
2. a record already in ``applied_events`` is skipped (duplicates from the
   relay's at-least-once delivery or from a redelivered batch);
3. a record whose handler raises is retried up to ``max_attempts`` times; then
   it goes to the dead-letter topic with the reason, is recorded as
   dead-lettered, counted in a metric, and the partition moves on;
4. Kafka offsets are committed only after the transaction committed.

A crash anywhere loses nothing (offsets not committed: redelivered) and
applies nothing twice (``applied_events``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from libs.events.envelope import Envelope, topic_for_context
from libs.events.registry import DomainEvent, EventRegistry, registry as default_registry
from libs.eventstore.migrations import check_schema_name
from libs.messaging.kafka import dead_letter_topic, ensure_topics, make_consumer, make_producer
from libs.observability import metrics

log = logging.getLogger(__name__)


class Projection(Protocol):
    """What a read model provides to the runtime."""

    #: Unique name: the Kafka consumer group and the key in ``applied_events``.
    name: str
    #: Bounded contexts it reads (``binome.<context>.events`` topics).
    contexts: tuple[str, ...]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        """Apply one event inside the runtime's transaction."""

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Empty the read model (for a rebuild)."""


#: Returned for an event another runner applied meanwhile.
_DUPLICATE = "duplicate"

AfterCommitHook = Callable[[dict[TopicPartition, int]], Awaitable[None]]


@dataclass
class _Outcome:
    applied: int = 0
    skipped: int = 0
    dead: int = 0
    newest_event_time: datetime | None = None


@dataclass
class ConsumerRunner:
    pool: asyncpg.Pool
    schema: str
    projection: Projection
    bootstrap: str
    service: str = ""
    topic_prefix: str = ""
    max_attempts: int = 3
    session_timeout_ms: int = 6000
    fetch_max_wait_ms: int = 50
    retry_backoff_s: float = 0.05
    registry: EventRegistry = field(default_factory=lambda: default_registry)
    #: Test seam: runs after the DB commit, before the Kafka offset commit.
    after_db_commit: AfterCommitHook | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.service = self.service or self.schema
        self.topics = [topic_for_context(c, self.topic_prefix) for c in self.projection.contexts]
        self.dead_letter_topic = dead_letter_topic(self.topic_prefix)
        s = self.schema
        self._sql_seen = f"SELECT event_id FROM {s}.applied_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])"
        self._sql_record = f"""INSERT INTO {s}.applied_events (consumer, event_id, outcome, reason)
                               VALUES ($1, $2, $3, $4)"""
        # Claimed before the handler runs: a second runner holding the same event
        # (during a group rebalance) waits on this row, then sees it and skips.
        self._sql_claim = f"""INSERT INTO {s}.applied_events (consumer, event_id) VALUES ($1, $2)
                              ON CONFLICT DO NOTHING RETURNING true"""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Exceptions from the seams propagate."""
        await ensure_topics(self.bootstrap, [*self.topics, self.dead_letter_topic])
        consumer = make_consumer(
            self.bootstrap,
            self.projection.name,
            self.topics,
            session_timeout_ms=self.session_timeout_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        producer = make_producer(self.bootstrap)
        await consumer.start()
        await producer.start()
        self._consumer = consumer
        self.started.set()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                if batch:
                    await self._process(consumer, producer, batch)
                await self._record_lag(consumer)
        finally:
            self._consumer = None
            # No offset commit here: only _process commits, after the DB.
            await consumer.stop()
            await producer.stop()

    async def wait_assigned(self, timeout: float = 30.0) -> None:
        """Wait until the group gave this consumer its partitions (tests, start-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._consumer is not None and self._consumer.assignment():
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"consumer {self.projection.name} got no partitions in {timeout}s")

    # -- one batch -------------------------------------------------------------

    async def _process(
        self, consumer: AIOKafkaConsumer, producer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        records = [r for tp in sorted(batch, key=lambda t: (t.topic, t.partition)) for r in batch[tp]]
        try:
            outcome = await self._apply_batch(producer, records)
        except Exception:
            # The transaction rolled back: rewind so these records come again.
            for tp, recs in batch.items():
                consumer.seek(tp, recs[0].offset)
            raise
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items()}
        if self.after_db_commit is not None:
            await self.after_db_commit(offsets)
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        name = self.projection.name
        metrics.EVENTS_APPLIED.labels(self.service, name).inc(outcome.applied)
        if outcome.newest_event_time is not None:
            lag = (datetime.now(UTC) - outcome.newest_event_time).total_seconds()
            metrics.PROJECTION_LAG_SECONDS.labels(self.service, name).set(max(lag, 0.0))

    async def _apply_batch(self, producer, records: list[ConsumerRecord]) -> _Outcome:
        outcome = _Outcome()
        decoded = [self._decode(r) for r in records]
        ids = [env.id for env, _ in decoded if env is not None]
        async with self.pool.acquire() as conn, conn.transaction():
            seen = {r[0] for r in await conn.fetch(self._sql_seen, self.projection.name, ids)} if ids else set()
            for record, (envelope, error) in zip(records, decoded, strict=True):
                if envelope is None:
                    await self._dead_letter(producer, record, error or "undecodable", attempts=0)
                    outcome.dead += 1
                    continue
                if envelope.id in seen:
                    outcome.skipped += 1
                    continue
                seen.add(envelope.id)  # a duplicate within the same batch
                reason = await self._apply_with_retries(conn, envelope)
                if reason == _DUPLICATE:
                    outcome.skipped += 1
                elif reason is None:
                    outcome.applied += 1
                    if outcome.newest_event_time is None or envelope.time > outcome.newest_event_time:
                        outcome.newest_event_time = envelope.time
                else:
                    await self._dead_letter(producer, record, reason, attempts=self.max_attempts)
                    await conn.execute(self._sql_record, self.projection.name, envelope.id, "dead_lettered", reason)
                    outcome.dead += 1
        return outcome

    def _decode(self, record: ConsumerRecord) -> tuple[Envelope | None, str | None]:
        try:
            return Envelope.model_validate(orjson.loads(record.value)), None
        except Exception as exc:  # not JSON, or not an envelope: nothing to retry
            return None, f"undecodable: {exc}"[:1000]

    async def _apply_with_retries(self, conn: asyncpg.Connection, envelope: Envelope) -> str | None:
        """Apply in a savepoint, retrying; return None, ``_DUPLICATE`` or the failure reason."""
        reason = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with conn.transaction():  # savepoint: a failure undoes only this event
                    if not await conn.fetchval(self._sql_claim, self.projection.name, envelope.id):
                        return _DUPLICATE
                    event = self.registry.load(envelope)
                    await self.projection.handle(conn, envelope, event)
                return None
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"[:1000]
                log.warning("%s: event %s failed (attempt %d): %s", self.projection.name, envelope.id, attempt, reason)
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
        return reason

    async def _dead_letter(self, producer, record: ConsumerRecord, reason: str, attempts: int) -> None:
        headers = [
            ("reason", reason.encode()),
            ("consumer", self.projection.name.encode()),
            ("original-topic", record.topic.encode()),
            ("original-partition", str(record.partition).encode()),
            ("original-offset", str(record.offset).encode()),
            ("attempts", str(attempts).encode()),
        ]
        await producer.send_and_wait(self.dead_letter_topic, value=record.value, key=record.key, headers=headers)
        kind = reason.split(":", 1)[0]
        metrics.DEAD_LETTERS.labels(self.service, self.projection.name, kind).inc()

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            metrics.CONSUMER_LAG.labels(self.service, self.projection.name, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )


async def rebuild(pool: asyncpg.Pool, schema: str, projection: Projection) -> None:
    """Empty a read model and forget what it applied, in one transaction.

    The events then come again from the log (``EventStore.republish_all`` of
    each source context, or Kafka history on a cluster that keeps it) and the
    projection applies each exactly once.
    """
    check_schema_name(schema)
    async with pool.acquire() as conn, conn.transaction():
        await projection.reset(conn)
        await conn.execute(f"DELETE FROM {schema}.applied_events WHERE consumer = $1", projection.name)

"""The consumer runtime: Kafka records -> a projection's read model, exactly
once in effect.

For each batch fetched from the consumer group:

1. records that are not envelopes go to the dead-letter topic at once;
2. one database transaction claims every event id of the batch in
   ``applied_events`` with one statement (ids sorted, so two runners holding
   the same records during a rebalance lock them in the same order and never
   deadlock); ids claimed already are duplicates (the relay's at-least-once
   delivery, a redelivered batch) and are skipped;
3. the projection applies the claimed events in that same transaction (its
   ``handle_batch`` if it has one, else ``handle`` per event), so the
   read-model change and the record of what was applied commit together;
4. if anything in the batch fails, the transaction rolls back and the batch is
   applied again record by record: a savepoint per record, retried up to
   ``max_attempts`` handler calls in all (the failed batch call counts for the
   event that raised); an event that still fails goes to the dead-letter
   topic with the reason, is recorded as dead-lettered, counted in a metric,
   and the partition moves on;
5. Kafka offsets are committed only after the transaction committed.

A crash anywhere loses nothing (offsets not committed: redelivered) and
applies nothing twice (``applied_events``). The fast path costs a fixed number
of round trips per batch, not per event; the slow path runs only for a batch
that holds a failing event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
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
from libs.messaging.kafka import TopicSpec, dead_letter_topic, ensure_topics, make_consumer, make_producer
from libs.gdpr.personal import PersonalData
from libs.observability import metrics
from libs.observability.correlation import correlation

log = logging.getLogger(__name__)


class Projection(Protocol):
    """What a read model provides to the runtime.

    A projection may also define ``async def handle_batch(conn, items)``,
    ``items`` being ``(envelope, event)`` pairs in delivery order, to write a
    whole batch at once (one statement instead of one per event). The runtime
    uses it when present, else calls ``handle`` per event. Either runs inside
    the runtime's transaction; if it raises, the runtime falls back to
    ``handle`` per event to find the failing one.
    """

    #: Unique name: the Kafka consumer group and the key in ``applied_events``.
    name: str
    #: Bounded contexts it reads (``binome.<context>.events`` topics).
    contexts: tuple[str, ...]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        """Apply one event inside the runtime's transaction."""

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Empty the read model (for a rebuild)."""


BatchHandler = Callable[[asyncpg.Connection, Sequence[tuple[Envelope, DomainEvent]]], Awaitable[None]]
AfterCommitHook = Callable[[dict[TopicPartition, int]], Awaitable[None]]


@dataclass
class _Item:
    """A decoded record."""

    record: ConsumerRecord
    envelope: Envelope


@dataclass
class _Outcome:
    applied: int = 0
    skipped: int = 0
    dead: int = 0
    newest_event_time: datetime | None = None

    def count_applied(self, item: _Item) -> None:
        self.applied += 1
        happened = _happened_at(item)
        if self.newest_event_time is None or happened > self.newest_event_time:
            self.newest_event_time = happened


def _happened_at(item: _Item) -> datetime:
    """When the event happened, on the wall clock, for the projection lag.

    Its ``time``, unless that is later than when the relay published it: the
    dev clock (``binome demo``) dates events weeks ahead, which made the lag
    negative (read as 0). Then the Kafka record's timestamp, set on publishing.
    """
    timestamp_ms = item.record.timestamp
    if timestamp_ms is None or timestamp_ms < 0:
        return item.envelope.time
    return min(item.envelope.time, datetime.fromtimestamp(timestamp_ms / 1000, UTC))


class _BatchFailed(Exception):
    """The fast path failed; ``failed`` maps the event that raised, if known, to why."""

    def __init__(self, failed: dict[uuid.UUID, str]):
        super().__init__(f"batch failed: {failed or 'cause not tied to one event'}")
        self.failed = failed


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
    #: Partitions and replication factor of the topics it has to create.
    topic_spec: TopicSpec = field(default_factory=TopicSpec)
    registry: EventRegistry = field(default_factory=lambda: default_registry)
    #: GDPR: opens sealed personal values before the projection sees them
    #: (an erased person's read as ``libs.gdpr.personal.ERASED``).
    personal: PersonalData | None = None
    #: Test seam: runs after the DB commit, before the Kafka offset commit.
    after_db_commit: AfterCommitHook | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    #: While running and busy, the runner keeps one pool connection from batch
    #: to batch: writers saturating the pool then cannot starve the read side.
    _keep_connection: bool = field(default=False, init=False)
    _held: asyncpg.Connection | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.service = self.service or self.schema
        self.topics = [topic_for_context(c, self.topic_prefix) for c in self.projection.contexts]
        self.dead_letter_topic = dead_letter_topic(self.topic_prefix)
        s = self.schema
        # Claimed before the handler runs: a second runner holding the same
        # events (during a group rebalance) waits on these rows, then sees them
        # and skips. RETURNING gives the ids this transaction claimed.
        self._sql_claim = f"""INSERT INTO {s}.applied_events (consumer, event_id)
                              SELECT $1, id FROM unnest($2::uuid[]) AS id
                              ON CONFLICT DO NOTHING RETURNING event_id"""
        self._sql_dead = f"""UPDATE {s}.applied_events SET outcome = 'dead_lettered', reason = $3
                             WHERE consumer = $1 AND event_id = $2"""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Exceptions from the seams propagate."""
        await ensure_topics(self.bootstrap, [*self.topics, self.dead_letter_topic], self.topic_spec)
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
        self._keep_connection = True
        self.started.set()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                if batch:
                    await self._process(consumer, producer, batch)
                else:
                    await self._release_connection()  # idle: give it back to the pool
                await self._record_lag(consumer)
        finally:
            self._consumer = None
            self._keep_connection = False
            await self._release_connection()
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

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if not self._keep_connection:  # not running (tests hand batches in): borrow one
            async with self.pool.acquire() as conn:
                yield conn
            return
        if self._held is None:
            self._held = await self.pool.acquire()
        try:
            yield self._held
        except BaseException:
            await self._release_connection()  # perhaps broken: the pool checks it
            raise

    async def _release_connection(self) -> None:
        if self._held is not None:
            conn, self._held = self._held, None
            await self.pool.release(conn)

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
        items: list[_Item] = []
        for record in records:
            envelope, error = self._decode(record)
            if envelope is None:  # not JSON, or not an envelope: nothing to retry
                await self._dead_letter(producer, record, error or "undecodable", attempts=0)
                outcome.dead += 1
            else:
                items.append(_Item(record, envelope))
        if not items:
            return outcome
        if self.personal is not None:
            items = await self._opened(items)
        try:
            await self._apply_at_once(items, outcome)
        except _BatchFailed as failure:
            log.info("%s: batch of %d failed, applying it record by record", self.projection.name, len(items))
            await self._apply_one_by_one(producer, items, failure.failed, outcome)
        return outcome

    async def _opened(self, items: list[_Item]) -> list[_Item]:
        """The items with personal values opened; through the runner's own
        connection when the vault shares its database (never a second one)."""
        assert self.personal is not None
        async with self._connection() as conn:
            vault_conn = self.personal.vault_connection(self.pool, conn)
            opened = await self.personal.open([item.envelope for item in items], conn=vault_conn)
        return [_Item(item.record, envelope) for item, envelope in zip(items, opened, strict=True)]

    def _decode(self, record: ConsumerRecord) -> tuple[Envelope | None, str | None]:
        try:
            return Envelope.model_validate(orjson.loads(record.value)), None
        except Exception as exc:
            return None, f"undecodable: {exc}"[:1000]

    async def _claim(self, conn: asyncpg.Connection, items: list[_Item]) -> list[_Item]:
        """Claim the batch's event ids; return the items to apply, each id once, in order."""
        ids = sorted({item.envelope.id for item in items})  # one lock order for every runner
        claimed = {r[0] for r in await conn.fetch(self._sql_claim, self.projection.name, ids)}
        todo = []
        for item in items:
            if item.envelope.id in claimed:
                claimed.discard(item.envelope.id)  # a duplicate later in the batch is skipped
                todo.append(item)
        return todo

    # -- fast path: the whole batch in one transaction ---------------------------

    async def _apply_at_once(self, items: list[_Item], outcome: _Outcome) -> None:
        failed: dict[uuid.UUID, str] = {}
        try:
            async with self._connection() as conn, conn.transaction():
                todo = await self._claim(conn, items)
                await self._handle_all(conn, todo, failed)
        except Exception as exc:  # whatever it was, the slow path finds out (or fails too)
            raise _BatchFailed(failed) from exc
        # Counted only once the transaction committed.
        outcome.skipped += len(items) - len(todo)
        for item in todo:
            outcome.count_applied(item)

    async def _handle_all(self, conn: asyncpg.Connection, todo: list[_Item], failed: dict[uuid.UUID, str]) -> None:
        """Apply ``todo``; on failure, note in ``failed`` which event raised, when one did."""
        handle_batch: BatchHandler | None = getattr(self.projection, "handle_batch", None)
        pairs = []
        for item in todo:
            with _blame(failed, item.envelope):
                if handle_batch is None:
                    await self._handle_one(conn, item.envelope)
                else:
                    pairs.append((item.envelope, self.registry.load(item.envelope)))
        if handle_batch is not None and pairs:
            await handle_batch(conn, pairs)  # a failure here is not tied to one event

    async def _handle_one(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        with correlation(envelope.correlationid):  # log lines of the handler carry it
            await self.projection.handle(conn, envelope, self.registry.load(envelope))

    # -- slow path: record by record, with retries and dead letters --------------

    async def _apply_one_by_one(
        self, producer, items: list[_Item], failed: dict[uuid.UUID, str], outcome: _Outcome
    ) -> None:
        async with self._connection() as conn, conn.transaction():
            todo = await self._claim(conn, items)
            outcome.skipped += len(items) - len(todo)
            for item in todo:
                reason = await self._apply_with_retries(conn, item.envelope, failed.get(item.envelope.id))
                if reason is None:
                    outcome.count_applied(item)
                    continue
                await self._dead_letter(producer, item.record, reason, attempts=self.max_attempts)
                await conn.execute(self._sql_dead, self.projection.name, item.envelope.id, reason)
                outcome.dead += 1

    async def _apply_with_retries(
        self, conn: asyncpg.Connection, envelope: Envelope, failed_before: str | None
    ) -> str | None:
        """Apply in a savepoint, retrying; return None or the last failure's reason.

        ``failed_before``: the reason the fast path failed on this very event,
        which counts as its first attempt.
        """
        reason = failed_before
        attempt = 0 if failed_before is None else 1
        while attempt < self.max_attempts:
            if attempt:
                await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
            attempt += 1
            try:
                async with conn.transaction():  # savepoint: a failure undoes only this event
                    await self._handle_one(conn, envelope)
                return None
            except Exception as exc:
                reason = _reason(exc)
                log.warning("%s: event %s failed (attempt %d): %s", self.projection.name, envelope.id, attempt, reason)
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
        assigned = consumer.assignment()
        metrics.CONSUMER_PARTITIONS.labels(self.service, self.projection.name).set(len(assigned))
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            metrics.CONSUMER_LAG.labels(self.service, self.projection.name, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


@contextmanager
def _blame(failed: dict[uuid.UUID, str], envelope: Envelope) -> Iterator[None]:
    """Note in ``failed`` that ``envelope`` raised, and let the exception go on."""
    try:
        yield
    except Exception as exc:
        failed[envelope.id] = _reason(exc)
        raise


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

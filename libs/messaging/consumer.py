"""The consumer runtime: Kafka records -> a projection's read model, exactly
once in effect, healing from transient faults.

For each batch fetched from the consumer group:

1. each record is decoded and its payload loaded (upcast, validated) before
   any transaction: a record of a type the registry does not know (a newer
   producer) is skipped and counted, never parked; one that does not decode
   or validate is parked at once (retrying would give the same answer). A
   record of a type the projection says it ignores (``handles``) is neither
   opened (no vault look-up) nor loaded: it is only claimed, like the others;
2. one database transaction claims every event id of the batch in
   ``applied_events`` with one statement (ids sorted, so two runners holding
   the same records during a rebalance lock them in the same order and never
   deadlock); ids claimed already are duplicates (the relay's at-least-once
   delivery, a redelivered batch) and are skipped;
3. the projection applies the claimed events in that same transaction (its
   ``handle_batch`` if it has one, else ``handle`` per event); parked records
   are stored in ``dead_letters`` and produced to the dead-letter topic; the
   consumer's position per source context moves forward; all of it commits
   together;
4. a failure is classified (libs/messaging/faults.py). *Transient* (database
   or broker unavailable, serialization failure, lock or statement timeout,
   a table refusing writes): the transaction rolls back, the partitions are
   rewound to the batch, and the consumer backs off exponentially (capped at
   ``retry_max_backoff_s``) and fetches the same records again, for as long
   as it takes, still polling so it stays in its group. *Deterministic* (the
   domain refuses the event, a handler bug): the batch is applied again
   record by record, a savepoint per record, retried up to ``max_attempts``
   handler calls in all (the failed batch call counts for the event that
   raised); an event that still fails is parked with the reason, and the
   partition moves on;
5. Kafka offsets are committed only after the transaction committed, and
   at most once per ``commit_interval_s`` while records keep coming (at once
   when a fetch comes back empty, and on a clean stop): each commit is a
   broker round trip, which a batch of one event paid per consumer. A crash
   or a rebalance then redelivers at most that interval's batches, which
   their claims skip.

Retrying a batch that fails transiently is tenacity's (``libs.retry.
until_stopped``: its retry, stop, wait and before_sleep), iterated around
*fetch and apply*: a try is one ``getmany`` and the application of what it
returns, not a call on records held in memory, because the records must come
again from Kafka (the rewind; a rebalance meanwhile may hand them to another
member, and this one then gets others). A try that follows a failure waits
for records instead of ending on an empty poll, so the count, hence the
backoff, runs on until a batch applies; stopping the platform ends it.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception, stop_after_attempt, wait_exponential

from libs.events.envelope import Envelope, topic_for_context
from libs.events.registry import DomainEvent, EventRegistry, UnknownEventType, registry as default_registry
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import PersonalData
from libs.messaging.deadletters import DeadLetters, Parked, reason_of
from libs.messaging.faults import is_transient
from libs.messaging.kafka import (
    TopicSpec,
    dead_letter_topic,
    ensure_topics,
    event_headers,
    make_consumer,
    make_producer,
    position_of,
)
from libs.observability import metrics
from libs.observability.correlation import correlation
from libs.retry import until_stopped

log = logging.getLogger(__name__)


class Projection(Protocol):
    """What a read model provides to the runtime.

    Every projection of Binome also defines ``async def handle_batch(conn,
    items)``, ``items`` being ``(envelope, event)`` pairs in delivery order, to
    write a whole batch at once (few statements instead of one per event), or
    ``handle_each`` when its events must be applied one at a time. The
    runtime uses it when present, else calls ``handle`` per event. Either runs
    inside the runtime's transaction; if it raises, the runtime falls back to
    ``handle`` per event to find the failing one.

    A projection may also define ``handles(model) -> bool`` (every
    ``libs.messaging.dispatch.Consumer`` does): events of a model it does not
    handle are claimed but never opened, loaded nor handed to it.

    A replay (libs/messaging/replayer.py) calls ``replay_batch(conn, items)``
    instead when a projection defines it: the same read model, without work
    that only a serving process needs per batch (insights' gauges), and
    ``replay_done(conn)`` after its last batch (work done once per replay
    rather than per batch: insights' pair activity).

    A projection whose rows are each written by one stream only (insights'
    facts are keyed by the aggregate whose events write them) sets
    ``replays_by_stream = True``: ``binome replay --workers N`` may then split
    its log among N processes by stream (libs/messaging/replay_workers.py).
    Any other projection replays in one process, whatever ``--workers`` says.
    """

    #: Unique name: the Kafka consumer group and the key in ``applied_events``.
    name: str
    #: Bounded contexts it reads (``binome.<context>.events`` topics).
    contexts: tuple[str, ...]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        """Apply one event inside the runtime's transaction."""

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Empty the read model (for a rebuild)."""


async def handle_each(
    projection: Projection, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, DomainEvent]]
) -> None:
    """``handle_batch`` for a projection that applies one event at a time (its
    handlers read what earlier events wrote, or run a process manager)."""
    for envelope, event in items:
        with correlation(envelope.correlationid):  # log lines of the handler carry it
            await projection.handle(conn, envelope, event)


BatchHandler = Callable[[asyncpg.Connection, Sequence[tuple[Envelope, DomainEvent]]], Awaitable[None]]
AfterCommitHook = Callable[[dict[TopicPartition, int]], Awaitable[None]]


def claim_sql(schema: str) -> str:
    """SQL claiming event ids ``$2`` for consumer ``$1``; returns those claimed now.

    Claimed before the handler runs: a second runner holding the same events
    (a group rebalance, or a replay beside the live consumer) waits on these
    rows, then sees them and skips. Callers pass the ids sorted, so two
    claimers lock in one order and never deadlock.
    """
    return f"""INSERT INTO {check_schema_name(schema)}.applied_events (consumer, event_id)
               SELECT $1, id FROM unnest($2::uuid[]) AS id
               ON CONFLICT DO NOTHING RETURNING event_id"""


@dataclass
class _Item:
    """A decoded record: ``event`` is its loaded payload, or None when
    ``problem`` says why it cannot be loaded (it is parked)."""

    record: ConsumerRecord
    envelope: Envelope
    event: DomainEvent | None = None
    problem: str | None = None
    #: A type the registry does not know (a newer producer): claimed, so the
    #: consumer's watermark passes it, but never handled nor parked.
    unknown_type: bool = False
    #: A type the projection does not handle: claimed (the watermark passes
    #: it), counted as applied, but neither opened, loaded nor handed over.
    ignored: bool = False


@dataclass
class _Batch:
    """One fetch, sorted out before any transaction."""

    records: list[ConsumerRecord]
    items: list[_Item] = field(default_factory=list)
    undecodable: list[Parked] = field(default_factory=list)
    unknown: int = 0


@dataclass
class _Outcome:
    applied: int = 0
    skipped: int = 0
    dead: int = 0
    unknown: int = 0
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


class _Rebalances(ConsumerRebalanceListener):
    """Logs the partitions a runner holds after each rebalance, and its first
    batch after an assignment: after a broker restart or a rejoin, the log
    says when each consumer got its partitions back and applied again
    (silence there is a consumer that never resumed)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.awaiting_first_batch = False

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        if revoked:
            log.info("%s: partitions revoked: %s", self.name, _partitions(revoked))

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        log.info("%s: partitions assigned: %s", self.name, _partitions(assigned) or "none")
        self.awaiting_first_batch = bool(assigned)

    def applied(self, records: int) -> None:
        if self.awaiting_first_batch:
            self.awaiting_first_batch = False
            log.info("%s: first batch since the assignment applied (records: %d)", self.name, records)


def _partitions(partitions: Collection[TopicPartition]) -> str:
    """``topic[0,2]; other[1]``."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{topic}[{','.join(map(str, sorted(ps)))}]" for topic, ps in sorted(by_topic.items()))


class _BatchFailed(Exception):
    """The fast path failed deterministically; ``failed`` maps the event that
    raised, if known, to why."""

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
    #: First wait between tries (deterministic failures: doubled each try;
    #: transient ones: the start of the exponential backoff).
    retry_backoff_s: float = 0.05
    #: Longest wait between two tries of a batch failing transiently.
    retry_max_backoff_s: float = 60.0
    #: Partitions and replication factor of the topics it has to create.
    topic_spec: TopicSpec = field(default_factory=TopicSpec)
    registry: EventRegistry = field(default_factory=lambda: default_registry)
    #: GDPR: opens sealed personal values before the projection sees them
    #: (an erased person's read as ``libs.gdpr.personal.ERASED``).
    personal: PersonalData | None = None
    #: Test seam: runs after the DB commit, before the Kafka offset commit.
    after_db_commit: AfterCommitHook | None = None
    #: While records keep coming, offsets are committed to Kafka at most this
    #: often (always after the DB commit; see the module's step 5).
    commit_interval_s: float = 1.0
    #: The lag gauges are refreshed at most this often (they cost a call per
    #: partition; a scrape every few seconds reads them).
    lag_interval_s: float = 1.0
    started: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    #: While running and busy, the runner keeps one pool connection from batch
    #: to batch: writers saturating the pool then cannot starve the read side.
    _keep_connection: bool = field(default=False, init=False)
    _held: asyncpg.Connection | None = field(default=None, init=False)
    #: Offsets whose batches committed in the database, not yet in Kafka.
    _uncommitted: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _committed_at: float = field(default=0.0, init=False)
    _lag_recorded_at: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.service = self.service or self.schema
        self.topics = [topic_for_context(c, self.topic_prefix) for c in self.projection.contexts]
        self.dead_letter_topic = dead_letter_topic(self.topic_prefix)
        self.dead_letters = DeadLetters(self.schema)
        self._sql_claim = claim_sql(self.schema)
        self._rebalances = _Rebalances(self.projection.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Transient failures are retried here,
        for ever; other exceptions (and those from the seams) propagate."""
        await ensure_topics(self.bootstrap, [*self.topics, self.dead_letter_topic], self.topic_spec)
        consumer = make_consumer(
            self.bootstrap,
            self.projection.name,
            self.topics,
            session_timeout_ms=self.session_timeout_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            listener=self._rebalances,
        )
        producer = make_producer(self.bootstrap)
        await consumer.start()
        await producer.start()
        self._consumer = consumer
        self._keep_connection = True
        self.started.set()
        retrying = until_stopped(
            stop,
            retry_if=is_transient,  # others propagate: supervise() restarts the runner
            after=self._count_failure,
            before_sleep=self._backing_off,
            multiplier=self.retry_backoff_s,
            max=self.retry_max_backoff_s,
            jitter=self.retry_backoff_s,
        )
        try:
            while not stop.is_set():
                try:
                    async for attempt in retrying:
                        with attempt:
                            tries = attempt.retry_state.attempt_number
                            applied = await self._fetch_and_apply(consumer, producer, stop, again=tries > 1)
                except RetryError:
                    break  # stopped while the batch kept failing
                if applied and tries > 1:
                    log.warning("%s: recovered after %d tries", self.projection.name, tries)
                await self._record_lag(consumer)
            await self._commit_offsets(consumer)  # a clean stop leaves nothing to redeliver
        finally:
            self._consumer = None
            self._keep_connection = False
            await self._release_connection()
            # No offset commit on a failure: what is pending committed in the
            # database, and its claims skip it when it comes again.
            await consumer.stop()
            await producer.stop()

    async def _fetch_and_apply(self, consumer: AIOKafkaConsumer, producer, stop: asyncio.Event, again: bool) -> bool:
        """One try: fetch a batch and apply it; False if there was none.

        ``again``: an earlier try failed and rewound its partitions, so wait
        for records (the same ones, unless a rebalance moved them) rather than
        end the retrying on an empty poll."""
        batch = await consumer.getmany(timeout_ms=200)
        while again and not batch and not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
        if not batch:
            await self._release_connection()  # idle: give it back to the pool
            await self._commit_offsets(consumer)
            return False
        await self._process(consumer, producer, batch)
        return True

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

    # -- healing from transient faults ----------------------------------------

    def _count_failure(self, state: RetryCallState) -> None:
        metrics.CONSUMER_TRANSIENT_FAILURES.labels(self.service, self.projection.name).inc()

    def _backing_off(self, state: RetryCallState) -> None:
        """Log the first failure of a period at warning level, the others at debug."""
        if state.attempt_number == 1:
            assert state.outcome is not None
            log.warning(
                "%s: transient failure, retrying the batch with backoff until it applies: %s",
                self.projection.name,
                reason_of(state.outcome.exception()),
            )
        else:
            log.debug(
                "%s: try %d failed again; next in %.2fs",
                self.projection.name,
                state.attempt_number,
                state.upcoming_sleep,
            )

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
        self._uncommitted.update(offsets)
        self._rebalances.applied(len(records))
        if time.monotonic() - self._committed_at >= self.commit_interval_s:
            await self._commit_offsets(consumer)
        name = self.projection.name
        metrics.EVENTS_APPLIED.labels(self.service, name).inc(outcome.applied)
        if outcome.newest_event_time is not None:
            lag = (datetime.now(UTC) - outcome.newest_event_time).total_seconds()
            metrics.PROJECTION_LAG_SECONDS.labels(self.service, name).set(max(lag, 0.0))

    async def _commit_offsets(self, consumer: AIOKafkaConsumer) -> None:
        """Commit to Kafka the offsets of the batches the database committed,
        for the partitions this member still holds (a rebalance may have
        taken some: their new owner's claims skip what it gets again)."""
        pending, self._uncommitted = self._uncommitted, {}
        assigned = consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, "") for tp, o in pending.items() if tp in assigned}
        if offsets:
            await consumer.commit(offsets)
        self._committed_at = time.monotonic()

    async def _apply_batch(self, producer, records: list[ConsumerRecord]) -> _Outcome:
        """Apply one fetch; raises only what must be retried as a whole (transient)."""
        batch = await self._sort_out(records)
        try:
            return await self._commit(producer, batch, failed=None)
        except _BatchFailed as failure:
            log.info("%s: batch of %d failed, applying it record by record", self.projection.name, len(batch.items))
            return await self._commit(producer, batch, failed=failure.failed)

    async def _sort_out(self, records: list[ConsumerRecord]) -> _Batch:
        """Step 1: decode, open personal values, load payloads."""
        batch = _Batch(records)
        decoded: list[_Item] = []
        for record in records:
            try:
                decoded.append(_Item(record, Envelope.model_validate_json(record.value)))
            except Exception as exc:  # not JSON, or not an envelope: nothing to retry
                batch.undecodable.append(Parked(record, reason_of(exc, "undecodable"), attempts=0))
        for item in decoded:
            item.ignored = self._ignores(item.envelope)
        wanted = [item for item in decoded if not item.ignored]
        if self.personal is not None and wanted:
            await self._open(wanted)
        for item in decoded:
            if item.ignored:
                batch.items.append(item)
                continue
            try:
                item.event = self.registry.load(item.envelope)
            except UnknownEventType:
                item.unknown_type = True  # a newer producer's type: not this consumer's to judge
            except Exception as exc:
                item.problem = reason_of(exc, "invalid")
            batch.items.append(item)
        return batch

    def _ignores(self, envelope: Envelope) -> bool:
        """Whether the projection says it does not handle this event's type.
        A type that is upcast (or unknown) takes the full path: its model is
        known only once loaded."""
        handles = getattr(self.projection, "handles", None)
        if handles is None or envelope.type in self.registry.upcasters:
            return False
        model = self.registry.models.get(envelope.type)
        return model is not None and not handles(model)

    async def _open(self, items: list[_Item]) -> None:
        """Open the items' personal values (or withhold them from a projection
        that reads none); through the runner's own connection when the vault
        shares its database (never a second one)."""
        assert self.personal is not None
        async with self._connection() as conn:
            vault_conn = self.personal.vault_connection(self.pool, conn)
            opened = await self.personal.open_for(self.projection, [item.envelope for item in items], conn=vault_conn)
        for item, envelope in zip(items, opened, strict=True):
            item.envelope = envelope

    @staticmethod
    def _transaction(conn: asyncpg.Connection, batch: _Batch) -> AbstractAsyncContextManager[object]:
        """The batch's transaction; none when all it holds is to be claimed
        (types the projection ignores or does not know): the claim is then
        one statement, atomic on its own, instead of three round trips."""
        if batch.undecodable or any(not (i.ignored or i.unknown_type) for i in batch.items):
            return conn.transaction()
        return nullcontext()

    async def _claim(self, conn: asyncpg.Connection, items: list[_Item]) -> list[_Item]:
        """Claim the batch's event ids; return the items to deal with, each id once, in order."""
        ids = sorted({item.envelope.id for item in items})  # one lock order for every runner
        claimed = {r[0] for r in await conn.fetch(self._sql_claim, self.projection.name, ids)}
        todo = []
        for item in items:
            if item.envelope.id in claimed:
                claimed.discard(item.envelope.id)  # a duplicate later in the batch is skipped
                todo.append(item)
        return todo

    async def _commit(self, producer, batch: _Batch, failed: dict[uuid.UUID, str] | None) -> _Outcome:
        """Steps 2-3 in one transaction: at once (``failed`` None), else record by
        record, ``failed`` naming the events the batch attempt blamed."""
        outcome = _Outcome()
        parked = list(batch.undecodable)
        blamed: dict[uuid.UUID, str] = {}
        try:
            async with self._connection() as conn, self._transaction(conn, batch):
                todo = await self._claim(conn, batch.items)
                outcome.skipped = len(batch.items) - len(todo)
                outcome.unknown = sum(1 for i in todo if i.unknown_type)
                parked += [Parked(i.record, i.problem, 0, i.envelope) for i in todo if i.problem is not None]
                valid = [i for i in todo if i.problem is None and not i.unknown_type and not i.ignored]
                if failed is None:
                    await self._handle_all(conn, valid, blamed)
                    applied = valid
                else:
                    applied = await self._handle_one_by_one(conn, valid, failed, parked)
                await self.dead_letters.park(conn, self.projection.name, parked)
                for record in parked:  # last: a broker failure rolls all of it back
                    await self._dead_letter(producer, record)
        except Exception as exc:
            if failed is None and not is_transient(exc):
                raise _BatchFailed(blamed) from exc  # the slow path finds the culprit
            raise
        # Counted only once the transaction committed.
        for item in [*applied, *(i for i in todo if i.ignored)]:
            outcome.count_applied(item)
        outcome.dead = len(parked)
        self._count(outcome, parked)
        return outcome

    def _count(self, outcome: _Outcome, parked: list[Parked]) -> None:
        name = self.projection.name
        for record in parked:
            metrics.DEAD_LETTERS.labels(self.service, name, record.kind).inc()
        if outcome.skipped:
            metrics.EVENTS_SKIPPED.labels(self.service, name, "duplicate").inc(outcome.skipped)
        if outcome.unknown:
            metrics.EVENTS_SKIPPED.labels(self.service, name, "unknown_type").inc(outcome.unknown)

    # -- fast path: the whole batch at once ------------------------------------

    async def _handle_all(self, conn: asyncpg.Connection, todo: list[_Item], blamed: dict[uuid.UUID, str]) -> None:
        """Apply ``todo``; on failure, note in ``blamed`` which event raised, when one did."""
        handle_batch: BatchHandler | None = getattr(self.projection, "handle_batch", None)
        if handle_batch is not None:
            if todo:
                await handle_batch(conn, [(item.envelope, item.event) for item in todo])  # not tied to one event
            return
        for item in todo:
            with _blame(blamed, item.envelope):
                await self._handle_one(conn, item)

    async def _handle_one(self, conn: asyncpg.Connection, item: _Item) -> None:
        with correlation(item.envelope.correlationid):  # log lines of the handler carry it
            await self.projection.handle(conn, item.envelope, item.event)

    # -- slow path: record by record, with retries -----------------------------

    async def _handle_one_by_one(
        self, conn: asyncpg.Connection, todo: list[_Item], failed: dict[uuid.UUID, str], parked: list[Parked]
    ) -> list[_Item]:
        """Apply each event in a savepoint; park those that keep failing; return the applied."""
        applied = []
        for item in todo:
            reason = await self._apply_with_retries(conn, item, failed.get(item.envelope.id))
            if reason is None:
                applied.append(item)
            else:
                parked.append(Parked(item.record, reason, self.max_attempts, item.envelope))
        return applied

    async def _apply_with_retries(self, conn: asyncpg.Connection, item: _Item, failed_before: str | None) -> str | None:
        """Apply in a savepoint, retrying; return None or the last failure's reason.

        ``failed_before``: the reason the fast path failed on this very event,
        which counts as its first attempt. A transient failure propagates: the
        whole batch is retried later, not this event now.
        """
        done = 0 if failed_before is None else 1  # attempts made already
        if done >= self.max_attempts:
            return failed_before
        if done:
            await asyncio.sleep(self.retry_backoff_s)  # as after any failed attempt

        def warn(state: RetryCallState) -> None:
            assert state.outcome is not None
            reason = reason_of(state.outcome.exception())
            attempt = done + state.attempt_number
            log.warning("%s: event %s failed (attempt %d): %s", self.projection.name, item.envelope.id, attempt, reason)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: not is_transient(exc)),
            stop=stop_after_attempt(self.max_attempts - done),
            wait=wait_exponential(multiplier=self.retry_backoff_s * 2**done),
            after=warn,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with conn.transaction():  # savepoint: a failure undoes only this event
                        await self._handle_one(conn, item)
        except Exception as exc:
            if is_transient(exc):
                raise  # the whole batch is retried later, not this event now
            return reason_of(exc)
        return None

    async def _dead_letter(self, producer, parked: Parked) -> None:
        record = parked.record
        # A decoded event stays a structured CloudEvent on the dead-letter
        # topic (with its source position); undecodable bytes are not one.
        event = event_headers(position_of(record.headers)) if parked.envelope is not None else []
        headers = [
            *event,
            ("reason", parked.reason.encode()),
            ("consumer", self.projection.name.encode()),
            ("original-topic", record.topic.encode()),
            ("original-partition", str(record.partition).encode()),
            ("original-offset", str(record.offset).encode()),
            ("attempts", str(parked.attempts).encode()),
        ]
        await producer.send_and_wait(self.dead_letter_topic, value=record.value, key=record.key, headers=headers)

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        if time.monotonic() - self._lag_recorded_at < self.lag_interval_s:
            return
        self._lag_recorded_at = time.monotonic()
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


@contextmanager
def _blame(blamed: dict[uuid.UUID, str], envelope: Envelope) -> Iterator[None]:
    """Note in ``blamed`` that ``envelope`` raised, and let the exception go on."""
    try:
        yield
    except Exception as exc:
        blamed[envelope.id] = reason_of(exc)
        raise


async def rebuild(pool: asyncpg.Pool, schema: str, projection: Projection) -> None:
    """Empty a read model and forget what it applied, parked and reached, in
    one transaction.

    The events then come again from the log (``libs/messaging/replayer.py``
    reads the source stores) and the projection applies each exactly once; an
    event that still cannot apply is parked again.

    It first locks ``applied_events`` against writers (SHARE ROW EXCLUSIVE):
    the lock waits for consumer transactions in flight, which claim there
    first, and holds new ones at their claim until the read model is empty.
    Without it, a live consumer's transaction could commit a claim the
    rebuild did not see (a DELETE skips rows not yet committed) while the
    rebuild emptied what that transaction had written: an event marked
    applied whose effect is gone, which the replay would then skip.
    """
    check_schema_name(schema)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {schema}.applied_events IN SHARE ROW EXCLUSIVE MODE")
        await projection.reset(conn)
        for table in ("applied_events", "dead_letters", "consumer_watermarks"):
            await conn.execute(f"DELETE FROM {schema}.{table} WHERE consumer = $1", projection.name)

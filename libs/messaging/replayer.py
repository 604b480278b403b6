"""Rebuild a projection straight from the event stores, beside its live consumer.

After ``rebuild`` (libs/messaging/consumer.py) emptied the read model and
forgot what it applied, ``Replayer.run``:

1. takes a snapshot of each source database (``pg_current_snapshot``): the
   events visible in it are exactly those committed before the replay began;
2. reads each source context's events visible in it, in position order
   (``EventStore.read_committed_in``), a chunk ahead of the one being
   applied: position order is each stream's version order, and visibility in
   one snapshot needs no wait for unrelated transactions. Then it waits until
   every transaction running at the snapshot has ended and reads theirs: an
   append in flight when the replay began is waited for, never skipped (it
   is also in the outbox, so the live consumer may get it first). The
   events of transactions begun after the snapshot are the live consumer's,
   through the outbox and the relay (now, or at the next ``binome up``);
3. interleaves the contexts by the time the source stored each event
   (``recorded_at``; each context keeps its position order), the nearest
   thing to the order the live consumer saw;
4. applies ``batch_size`` events per transaction as the consumer does (the
   next batch decoded meanwhile): open personal values, load payloads (an
   unknown type is claimed, not handled; one that does not load is parked), claim the ids in ``applied_events``
   with the consumer's own statement, hand the claimed ones to the
   projection's ``handle_batch`` (else ``handle`` per event), commit. If the
   batch call fails, the batch is applied again event by event, a savepoint
   each, and an event that still fails is parked; a transient failure
   retries the batch with backoff;
5. after the last batch, calls the projection's ``replay_done(conn)`` if it
   has one, in a transaction of its own: work a live consumer does per batch
   that a replay can do once (insights recomputes each touched pair's
   activity there, not in every batch that touched the pair).

The garbage collector runs less often meanwhile (``REPLAY_GC_THRESHOLD``).
To use more than one core, ``libs/messaging/replay_workers.py`` runs
several replayers, each with a ``partition`` of the streams: handing decoded
events from a decoding process to an applying one would cost more than
decoding them (pickling a pydantic envelope and payload and loading them back
took about 140 µs an event here, decoding them 12-25).

It publishes nothing: no outbox row, no record, so no other consumer sees
anything. The live consumer keeps running: an event committed after the
rebuild reaches it through the relay, and the replay may read it too (one
that was being written when the replay began); the claim lets exactly one of
them apply it. Events already delivered to the live consumer before the
rebuild and still in its hands are claimed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import logging
import operator
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import ConsumerRecord
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from libs.events.envelope import Envelope, topic_for_context
from libs.events.registry import DomainEvent, EventRegistry, UnknownEventType, registry as default_registry
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore, StoredRecord
from libs.gdpr.personal import PersonalData
from libs.messaging.consumer import Projection, claim_sql
from libs.messaging.deadletters import DeadLetters, Parked, reason_of
from libs.messaging.faults import is_transient
from libs.messaging.kafka import POSITION_HEADER

log = logging.getLogger(__name__)

_uuid_int = operator.attrgetter("int")

#: The collector's thresholds during a replay (CPython's default: 700, 10, 10).
#: The decoded batches in flight (two or three, tens of thousands of objects,
#: none in a cycle: reference counting frees them) outlive the young
#: collections, so with the default thresholds they are walked again and again
#: on their way to the old generation; a replay of 100,000 events spent about
#: a fifth of its time in the collector.
REPLAY_GC_THRESHOLD = (10_000, 50, 1000)

#: Events applied per transaction unless told otherwise (``binome replay
#: --batch-size``): 5,000 rebuilt 1 M events faster than 2,000 on two cores.
BATCH_SIZE = 5000

#: Called with the number of events just read and dealt with (progress bars).
Advance = Callable[[int], None]


@dataclass(frozen=True)
class Source:
    """One context's log: its store (pool and schema)."""

    context: str
    store: EventStore


@dataclass
class Replayed:
    """What a replay did with the events it read."""

    read: int = 0
    applied: int = 0
    #: Claimed already: the live consumer applied them first.
    skipped: int = 0
    #: Types this registry does not know: claimed, not handled.
    unknown: int = 0
    parked: int = 0
    #: Processes that applied it (the parts of ``run_partitioned`` add up).
    processes: int = 1
    seconds: float = 0.0
    #: From the start until the first batch committed.
    first_applied_s: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Item:
    topic: str  # the source context's topic, for a dead letter
    record: StoredRecord
    envelope: Envelope | None = None
    event: DomainEvent | None = None
    problem: str | None = None
    unknown_type: bool = False


class _Log:
    """One source's log: what committed before the replay began, then what
    was still being written then (see the module docstring)."""

    def __init__(self, source: Source, chunk: int, poll_s: float, partition: tuple[int, int] | None = None) -> None:
        self.source = source
        self.chunk = chunk
        self.poll_s = poll_s
        self.partition = partition
        self.topic = topic_for_context(source.context, source.store.topic_prefix)
        self.snapshot = ""
        self.any_running = False
        self.after = 0  # position
        self.last = 0  # the highest position visible in the snapshot can hold (partitioned reads)
        self.late = False  # reading the transactions that were running at the snapshot
        self._sql_running = """SELECT count(*) FROM pg_snapshot_xip($1::text::pg_snapshot) AS x
                               WHERE pg_xact_status(x) = 'in progress'"""

    async def take_snapshot(self, given: str | None = None) -> None:
        """The source's snapshot now, or ``given`` (one taken by the replay's first process)."""
        row = await self.source.store.pool.fetchrow(
            "SELECT s::text AS snapshot, (SELECT count(*) FROM pg_snapshot_xip(s)) AS running"
            " FROM coalesce($1::text::pg_snapshot, pg_current_snapshot()) AS s",
            given,
        )
        self.snapshot = row["snapshot"]
        self.any_running = row["running"] > 0
        if self.partition is not None:
            self.last = await self.source.store.last_position()

    async def next_chunk(self) -> list[StoredRecord] | None:
        """The next events in position order; None once both parts are read."""
        store = self.source.store
        while True:
            if self.partition is not None and not self.late:
                records = await self._next_range()  # moves ``after`` itself
            else:
                records = await store.read_committed_in(self.snapshot, self.after, self.chunk, late=self.late,
                                                        partition=self.partition)
                if records:
                    self.after = records[-1].checkpoint.position
            if records:
                return records
            if self.late or not self.any_running:
                return None
            await self._wait_for_running()
            self.late, self.after = True, 0

    async def _next_range(self) -> list[StoredRecord]:
        """A part's next events: ranges of positions (``read_committed_in``
        says why), each as wide as the chunk times the parts, so about a
        chunk of this part's; an empty range does not end the log, ``last`` does."""
        assert self.partition is not None
        count = self.partition[1]
        while self.after < self.last:
            up_to = min(self.after + self.chunk * count, self.last)
            records = await self.source.store.read_committed_in(
                self.snapshot, self.after, self.chunk * count, partition=self.partition, up_to_position=up_to)
            self.after = up_to
            if records:
                return records
        return []

    async def _wait_for_running(self) -> None:
        """Until every transaction running at the snapshot has ended: one of
        them may be appending here, committing after the replay began."""
        waited = False
        while await self.source.store.pool.fetchval(self._sql_running, self.snapshot):
            if not waited:
                log.info("%s: waiting for transactions that were running when the replay began", self.source.context)
                waited = True
            await asyncio.sleep(self.poll_s)

    async def records(self) -> AsyncIterator[StoredRecord]:
        """Every record, the next chunk read while this one is handed out."""
        pending = asyncio.ensure_future(self.next_chunk())
        try:
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(self.next_chunk())
                for record in chunk:
                    yield record
        finally:
            pending.cancel()


async def merged(logs: Sequence[_Log]) -> AsyncIterator[tuple[_Log, StoredRecord]]:
    """The logs interleaved by ``recorded_at`` (each keeps its own order)."""
    iterators = [log_.records() for log_ in logs]
    try:
        heap: list[tuple] = []
        for index, iterator in enumerate(iterators):
            first = await anext(iterator, None)
            if first is not None:
                heap.append((first.recorded_at, index, first))
        heapq.heapify(heap)
        while heap:
            _, index, record = heap[0]
            yield logs[index], record
            following = await anext(iterators[index], None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following.recorded_at, index, following))
    finally:  # on failure too: no read ahead left holding a connection
        for iterator in iterators:
            await iterator.aclose()


@dataclass
class Replayer:
    """Applies the logs of ``sources`` to ``projection`` (see the module docstring)."""

    pool: asyncpg.Pool
    schema: str
    projection: Projection
    sources: Sequence[Source]
    personal: PersonalData | None = None
    registry: EventRegistry = field(default_factory=lambda: default_registry)
    batch_size: int = BATCH_SIZE
    poll_s: float = 0.05
    #: Transient failures of one batch tolerated before the replay gives up.
    max_transient_failures: int = 8
    on_advance: Advance | None = None
    #: (index, count): apply only that part of the streams (``libs/messaging/
    #: replay_workers.py`` runs the others in other processes).
    partition: tuple[int, int] | None = None
    #: The sources' snapshots, when another process took them for all parts.
    snapshots: Sequence[str] | None = None
    #: Awaited after the last batch, before ``replay_done``: the parts' workers
    #: wait there until every part has applied its events.
    before_done: Callable[[], Awaitable[None]] | None = None
    _started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        self.dead_letters = DeadLetters(self.schema)
        self._sql_claim = claim_sql(self.schema)

    async def run(self) -> Replayed:
        """Read every source (see the module docstring) and apply; call after ``rebuild``.

        Two stages: one reads and decodes the next batch (Python) while the
        other's transaction runs in PostgreSQL, so both cores work."""
        self._started = started = time.perf_counter()
        outcome = Replayed()
        logs = [_Log(source, self.batch_size, self.poll_s, self.partition) for source in self.sources]
        for log_, given in zip(logs, self.snapshots or [None] * len(logs), strict=True):
            await log_.take_snapshot(given)
        ready: asyncio.Queue[list[_Item] | BaseException | None] = asyncio.Queue(maxsize=2)
        with _collections_less_often():
            decoder = asyncio.create_task(self._decode(logs, ready))
            try:
                while (batch := await ready.get()) is not None:
                    if isinstance(batch, BaseException):
                        raise batch
                    await self._apply(batch, outcome)
            finally:
                decoder.cancel()
                await asyncio.gather(decoder, return_exceptions=True)
        if self.before_done is not None:
            await self.before_done()
        if hasattr(self.projection, "replay_done"):
            await self._retrying(self._finish)
        outcome.seconds = time.perf_counter() - started
        return outcome

    async def _decode(self, logs: Sequence[_Log], ready: asyncio.Queue) -> None:
        """Hand decoded batches to ``run``; then None, or the exception that stopped it."""
        events = merged(logs)
        try:
            batch: list[_Item] = []
            async for log_, record in events:
                batch.append(_Item(log_.topic, record))
                if len(batch) >= self.batch_size:
                    await self._sort_out(batch)
                    await ready.put(batch)
                    batch = []
            if batch:
                await self._sort_out(batch)
                await ready.put(batch)
            await ready.put(None)
        except Exception as exc:
            await ready.put(exc)
        finally:
            await events.aclose()

    async def take_snapshots(self) -> list[str]:
        """Each source's snapshot now (for ``snapshots``: one set for every part)."""
        logs = [_Log(source, self.batch_size, self.poll_s) for source in self.sources]
        for log_ in logs:
            await log_.take_snapshot()
        return [log_.snapshot for log_ in logs]

    async def _apply(self, batch: list[_Item], outcome: Replayed) -> None:
        await self._retrying(lambda conn: self._commit(conn, batch, outcome))
        outcome.read += len(batch)
        if outcome.first_applied_s is None:
            outcome.first_applied_s = time.perf_counter() - self._started
        if self.on_advance is not None:
            self.on_advance(len(batch))

    async def _retrying(self, work: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """``work`` on a connection of the pool, again (with backoff) after a transient failure."""

        def warn(state: RetryCallState) -> None:
            assert state.outcome is not None
            reason = reason_of(state.outcome.exception())
            log.warning("%s replay: transient failure, retrying: %s", self.projection.name, reason)

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_transient_failures + 1),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            before_sleep=warn,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with self.pool.acquire() as conn:
                    await work(conn)

    async def _finish(self, conn: asyncpg.Connection) -> None:
        """The projection's work after the last batch (``replay_done``), in one transaction."""
        async with conn.transaction():
            await self.projection.replay_done(conn)

    async def _sort_out(self, batch: list[_Item]) -> None:
        """Decode, open personal values, load payloads (before any transaction)."""
        decoded: list[_Item] = []
        for item in batch:
            try:
                # pydantic parses the stored JSON itself: one pass, no
                # intermediate dict (``loads`` is orjson then validation).
                item.envelope = Envelope.model_validate_json(item.record.raw)
                decoded.append(item)
            except Exception as exc:  # a row no reader can decode: parked, as the consumer does
                item.problem = reason_of(exc, "undecodable")
        if self.personal is not None and decoded:
            opened = await self.personal.open_for(self.projection, [i.envelope for i in decoded])
            for item, envelope in zip(decoded, opened, strict=True):
                item.envelope = envelope
        for item in decoded:
            try:
                item.event = self.registry.load(item.envelope)
            except UnknownEventType:
                item.unknown_type = True
            except Exception as exc:
                item.problem = reason_of(exc, "invalid")

    async def _commit(self, conn: asyncpg.Connection, batch: list[_Item], outcome: Replayed) -> None:
        async with conn.transaction():
            # A replay's batch need not wait for its WAL to reach the disk: a
            # crash loses at most the last batches (not half of one), and a
            # rebuild that died is run again from the start anyway.
            await conn.execute("SET LOCAL synchronous_commit = off")
            todo, skipped = await self._claim(conn, batch)
            parked = [self._parked(i, i.problem, 0) for i in todo if i.problem is not None]
            valid = [i for i in todo if i.problem is None and not i.unknown_type]
            try:
                async with conn.transaction():  # savepoint: a failure leaves the claims usable
                    await self._handle_all(conn, valid)
                applied = len(valid)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.info("%s replay: batch of %d failed, applying it event by event", self.projection.name, len(valid))
                applied = await self._handle_one_by_one(conn, valid, parked)
            await self.dead_letters.park(conn, self.projection.name, parked)
        outcome.applied += applied
        outcome.skipped += skipped
        outcome.unknown += sum(1 for i in todo if i.unknown_type)
        outcome.parked += len(parked)

    async def _claim(self, conn: asyncpg.Connection, batch: list[_Item]) -> tuple[list[_Item], int]:
        """Claim the batch's ids (an undecodable row has none: it is parked as it is)."""
        # Sorted by the integer (the order of the UUIDs themselves, which the
        # live consumer uses), without a Python ``__lt__`` call per comparison.
        ids = sorted({i.envelope.id for i in batch if i.envelope is not None}, key=_uuid_int)
        rows = await conn.fetch(self._sql_claim, self.projection.name, ids)
        if len(rows) == len(ids):  # all claimed now: a rebuild's usual batch, no lookup per event
            return batch, 0
        claimed = {r[0] for r in rows}
        todo = [i for i in batch if i.envelope is None or i.envelope.id in claimed]
        return todo, len(batch) - len(todo)

    async def _handle_all(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        if not items:
            return
        # A projection may offer a replay's own batch call (the same read
        # model, without what only a serving process needs per batch).
        handle_batch = getattr(self.projection, "replay_batch", None) or getattr(self.projection, "handle_batch", None)
        if handle_batch is not None:
            await handle_batch(conn, [(i.envelope, i.event) for i in items])
            return
        for item in items:
            await self.projection.handle(conn, item.envelope, item.event)

    async def _handle_one_by_one(self, conn: asyncpg.Connection, items: list[_Item], parked: list[Parked]) -> int:
        applied = 0
        for item in items:
            try:
                async with conn.transaction():
                    await self.projection.handle(conn, item.envelope, item.event)
                applied += 1
            except Exception as exc:
                if is_transient(exc):
                    raise
                parked.append(self._parked(item, reason_of(exc), 1))
        return applied

    def _parked(self, item: _Item, reason: str, attempts: int) -> Parked:
        """A dead letter as the consumer writes one; partition and offset -1:
        the event came from the store, not from a topic."""
        raw = item.record.raw.encode()
        key = item.envelope.subject.encode() if item.envelope is not None else None
        record = ConsumerRecord(
            topic=item.topic, partition=-1, offset=-1, timestamp=-1, timestamp_type=0,
            key=key, value=raw, checksum=None, serialized_key_size=len(key or b""), serialized_value_size=len(raw),
            headers=[(POSITION_HEADER, str(item.record.checkpoint.position).encode())],
        )
        return Parked(record, reason, attempts, item.envelope)


@contextlib.contextmanager
def _collections_less_often() -> Iterator[None]:
    """``REPLAY_GC_THRESHOLD`` while the replay runs, then the thresholds of before."""
    before = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)

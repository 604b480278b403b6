"""Where each consumer stands in each source log, measured against the event stores.

A consumer's *watermark* on a source context is a checkpoint of that
context's event store, in the commit-safe order of ``EventStore.read_all``
(writing transaction, then position): the consumer has applied, or parked as
a dead letter, every event at or before it. Two things follow from it.

* **Lag that cannot lie.** The backlog is what the store holds after the
  watermark (``binome_consumer_backlog_events``) and the age of the oldest
  event the consumer has not applied (``binome_consumer_backlog_seconds``).
  Neither depends on the broker: a consumer that is blocked, crashed or fed
  by a broker that lost everything shows a backlog growing by the second.
* **An empty broker gets only what is needed.** After the embedded broker
  started empty (memory-only), each source queues again only the events
  after the lowest watermark of its consumers (``EventStore.republish_after``),
  not its whole history: a caught-up platform republishes nothing.

Why a checkpoint in transaction order and not a position: identity positions
are allocated before commit, so an event can commit *behind* a position
already applied. Only transactions older than every running one
(``pg_snapshot_xmin``) are final, so the walk stops there, and a later commit
can never land before the watermark.

The walk reads the source's events from its store and what the consumer
applied from the consumer's own ``applied_events``, in two queries per chunk,
so it also works with a database per service (``BINOME_EVENT_STORE_URLS``).
Each advance costs what the consumer applied since the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import Checkpoint
from libs.observability import metrics
from libs.retry import sleep_unless_stopped

log = logging.getLogger(__name__)

BEGINNING = Checkpoint()


def after(checkpoint: Checkpoint, table: str = "") -> str:
    """SQL: the events after ``checkpoint`` in commit-safe order.

    Written as literals (two integers), not parameters: PostgreSQL then plans
    each call for its checkpoint. A cached generic plan cannot know that the
    watermark sits near the end of the log, and hashed the whole table on
    every refresh (80 ms a call on 300,000 events instead of a few
    microseconds)."""
    return (
        f"({table}transaction_id, {table}position) > "
        f"('{int(checkpoint.transaction_id)}'::xid8, {int(checkpoint.position)})"
    )


@dataclass(frozen=True)
class Subscription:
    """One consumer reading one source context's log."""

    service: str  # the consumer's service (metrics label)
    schema: str  # where the consumer records what it applied
    consumer: str  # the projection's name
    source: str  # the source context, which is its service's schema

    def __post_init__(self) -> None:
        check_schema_name(self.schema)
        check_schema_name(self.source)


@dataclass(frozen=True)
class Standing:
    """A consumer's place in a source log after an advance."""

    subscription: Subscription
    watermark: Checkpoint
    backlog_events: int
    oldest_unapplied_at: datetime | None

    def backlog_seconds(self, now: datetime) -> float:
        if self.oldest_unapplied_at is None:
            return 0.0
        return max((now - self.oldest_unapplied_at).total_seconds(), 0.0)


@dataclass
class Watermarks:
    """Advances and reads consumers' watermarks.

    ``pool``: the consumers' database. ``sources``: the database of each
    source context when it is not ``pool`` (a database per service).
    """

    pool: asyncpg.Pool
    sources: Mapping[str, asyncpg.Pool] = field(default_factory=dict)
    #: Events read per step of the walk.
    chunk: int = 5000

    def source_pool(self, source: str) -> asyncpg.Pool:
        return self.sources.get(source, self.pool)

    async def advance(self, subscription: Subscription) -> Standing:
        """Move the watermark past every event the consumer has applied, in
        commit-safe order; store it; measure the backlog behind it."""
        s = subscription
        source = self.source_pool(s.source)
        watermark = await self._stored(s)
        if source is self.pool:
            watermark, passed, oldest_unapplied = await self._walk_in_one_query(s, watermark)
        else:
            watermark, passed, oldest_unapplied = await self._walk_in_chunks(s, source, watermark)
        if passed is not None:  # it moved: store it, unless a rebuild forgot what it passed
            await self._store(s, watermark, passed)
        backlog = await source.fetchval(
            f"SELECT count(*) FROM {s.source}.events WHERE {after(watermark)}"
        )
        return Standing(s, watermark, backlog, oldest_unapplied)

    async def _walk_in_one_query(
        self, s: Subscription, watermark: Checkpoint
    ) -> tuple[Checkpoint, UUID | None, datetime | None]:
        """Source and consumer share a database: one anti-join finds the first
        event the consumer has not applied (the *gap*); the watermark moves to
        the newest event before it. A first walk over a million events then
        takes about a second, not a million look-ups."""
        row = await self.pool.fetchrow(
            f"""WITH after AS (
                    SELECT e.transaction_id, e.position, e.event_id, e.recorded_at, a.event_id IS NULL AS unapplied
                    FROM {s.source}.events e
                    LEFT JOIN {s.schema}.applied_events a ON a.consumer = $1 AND a.event_id = e.event_id
                    WHERE {after(watermark, "e.")}
                      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ), gap AS (
                    SELECT transaction_id, position, recorded_at FROM after WHERE unapplied
                    ORDER BY transaction_id, position LIMIT 1
                ), applied_before_gap AS (
                    SELECT transaction_id, position, event_id FROM after
                    WHERE NOT EXISTS (SELECT 1 FROM gap g WHERE (after.transaction_id, after.position) >= (g.transaction_id, g.position))
                    ORDER BY transaction_id DESC, position DESC LIMIT 1
                )
                SELECT (SELECT recorded_at FROM gap) AS oldest_unapplied,
                       (SELECT transaction_id::text FROM applied_before_gap) AS tx,
                       (SELECT position FROM applied_before_gap) AS position,
                       (SELECT event_id FROM applied_before_gap) AS event_id""",
            s.consumer,
        )
        if row["tx"] is not None:
            watermark = Checkpoint(int(row["tx"]), row["position"])
        return watermark, row["event_id"], row["oldest_unapplied"]

    async def _walk_in_chunks(
        self, s: Subscription, source: asyncpg.Pool, watermark: Checkpoint
    ) -> tuple[Checkpoint, UUID | None, datetime | None]:
        """Source in another database: read the source's events a chunk at a
        time, and which of them the consumer applied from its own database."""
        oldest_unapplied: datetime | None = None
        passed: UUID | None = None
        while True:
            rows = await source.fetch(
                f"""SELECT transaction_id::text AS tx, position, event_id, recorded_at
                    FROM {s.source}.events
                    WHERE {after(watermark)}
                      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                    ORDER BY transaction_id, position
                    LIMIT $1""",
                self.chunk,
            )
            if not rows:
                break
            applied = {
                r[0]
                for r in await self.pool.fetch(
                    f"SELECT event_id FROM {s.schema}.applied_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
                    s.consumer,
                    [r["event_id"] for r in rows],
                )
            }
            for row in rows:
                if row["event_id"] not in applied:
                    oldest_unapplied = row["recorded_at"]
                    break
                watermark, passed = Checkpoint(int(row["tx"]), row["position"]), row["event_id"]
            if oldest_unapplied is not None or len(rows) < self.chunk:
                break
        return watermark, passed, oldest_unapplied

    async def lowest(self, subscriptions: Sequence[Subscription], source: str) -> Checkpoint | None:
        """The lowest watermark, freshly advanced, of the consumers of ``source``
        (None: nobody reads it)."""
        readers = [s for s in subscriptions if s.source == source]
        if not readers:
            return None
        standings = [await self.advance(s) for s in readers]
        return min(standing.watermark for standing in standings)

    async def _stored(self, s: Subscription) -> Checkpoint:
        row = await self.pool.fetchrow(
            f"""SELECT transaction_id::text AS tx, position FROM {s.schema}.consumer_watermarks
                WHERE consumer = $1 AND source = $2""",
            s.consumer,
            s.source,
        )
        return BEGINNING if row is None else Checkpoint(int(row["tx"]), row["position"])

    async def _store(self, s: Subscription, watermark: Checkpoint, passed: UUID) -> None:
        """Store ``watermark``, the checkpoint of event ``passed``.

        Only forward: two instances of a service advance the same watermark,
        and the slower one must never move it back. And only while the
        consumer still has ``passed`` applied: a rebuild (``rebuild`` in
        libs/messaging/consumer.py) may have forgotten it since the walk
        read it. The row lock (FOR KEY SHARE) orders the two: a rebuild that
        deleted the row first makes this wait and find it gone; one that
        comes second deletes this watermark with the rest.
        """
        await self.pool.execute(
            f"""WITH still_applied AS (
                    SELECT 1 FROM {s.schema}.applied_events WHERE consumer = $1 AND event_id = $5 FOR KEY SHARE)
                INSERT INTO {s.schema}.consumer_watermarks AS w (consumer, source, transaction_id, position)
                SELECT $1, $2, $3::text::xid8, $4 WHERE EXISTS (SELECT 1 FROM still_applied)
                ON CONFLICT (consumer, source) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position, moved_at = clock_timestamp()
                WHERE (w.transaction_id, w.position) < (EXCLUDED.transaction_id, EXCLUDED.position)""",
            s.consumer,
            s.source,
            str(watermark.transaction_id),
            watermark.position,
            passed,
        )


@dataclass
class BacklogMonitor:
    """Refreshes ``binome_consumer_backlog_*`` for a process's consumers."""

    watermarks: Watermarks
    subscriptions: Sequence[Subscription]
    interval_s: float = 5.0

    async def refresh(self) -> list[Standing]:
        now = datetime.now(UTC)
        standings = []
        for s in self.subscriptions:
            standing = await self.watermarks.advance(s)
            labels = (s.service, s.consumer, s.source)
            metrics.CONSUMER_BACKLOG_EVENTS.labels(*labels).set(standing.backlog_events)
            metrics.CONSUMER_BACKLOG_SECONDS.labels(*labels).set(standing.backlog_seconds(now))
            standings.append(standing)
        return standings

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval_s`` until ``stop``; a failure propagates (the
        platform's supervisor restarts it with backoff)."""
        while not stop.is_set():
            await self.refresh()
            await sleep_unless_stopped(stop, self.interval_s)

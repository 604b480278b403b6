"""The event store of one service: a PostgreSQL table of CloudEvents envelopes.

* ``append`` names the version it expects; two writers racing on one stream
  cannot both win (unique ``(stream_id, version)``), the loser gets
  ``ConcurrencyError`` (HTTP 409).
* Appends are idempotent by event id: retrying an append whose reply was lost
  writes nothing more and returns the original result.
* The events and their outbox rows commit in one transaction (transactional
  outbox); ``pg_notify`` wakes the relay at commit.
* ``read_all`` walks the whole log in commit-safe order (see its docstring).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from libs.events.envelope import Envelope, topic_for_context
from libs.events.serialization import dumps, loads
from libs.eventstore.migrations import check_schema_name
from libs.observability import metrics


class ConcurrencyError(Exception):
    """The stream is not at the expected version (maps to HTTP 409)."""

    def __init__(self, stream_id: str, expected: int | None, actual: int | None = None):
        self.stream_id, self.expected, self.actual = stream_id, expected, actual
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")


class DuplicateEventError(Exception):
    """Some, but not all, event ids of an append exist already: not a retry."""


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    version: int  # the stream's version after the append
    events: tuple[Envelope, ...]
    replayed: bool = False  # True when this was a retry of an append already stored


@dataclass(frozen=True)
class StreamAppend:
    stream_id: str
    expected_version: int | None  # None: no check; 0: the stream must not exist
    events: Sequence[Envelope]


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A place in ``read_all``: (writing transaction, position)."""

    transaction_id: int = 0
    position: int = 0


@dataclass(frozen=True)
class StoredEvent:
    checkpoint: Checkpoint
    envelope: Envelope


def notify_channel(schema: str) -> str:
    return f"binome_outbox_{schema}"


class EventStore:
    def __init__(self, pool: asyncpg.Pool, schema: str, *, topic_prefix: str = "", service: str | None = None):
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.service = service or schema
        self.topic_prefix = topic_prefix
        s = self.schema
        self._sql_insert = f"""
            WITH new AS (
                INSERT INTO {s}.events (event_id, stream_id, version, type, envelope)
                SELECT u.event_id, u.stream_id, u.version, u.type, u.envelope::jsonb
                FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[])
                     WITH ORDINALITY AS u(event_id, stream_id, version, type, envelope, n)
                ORDER BY u.n
                RETURNING position, type
            )
            INSERT INTO {s}.outbox (position, topic)
            SELECT position, $6 || 'binome.' || split_part(type, '.', 2) || '.events' FROM new
        """
        self._sql_versions = f"""
            SELECT stream_id, max(version) AS version FROM {s}.events
            WHERE stream_id = ANY($1::text[]) GROUP BY stream_id
        """
        self._sql_existing_ids = f"""
            SELECT event_id, stream_id, version FROM {s}.events WHERE event_id = ANY($1::uuid[])
        """

    # -- writing -------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[Envelope],
        *,
        conn: asyncpg.Connection | None = None,
    ) -> AppendResult:
        """Append ``events`` to one stream; ``conn`` joins a caller's transaction."""
        results = await self.append_many([StreamAppend(stream_id, expected_version, events)], conn=conn)
        return results[0]

    async def append_many(
        self, appends: Sequence[StreamAppend], *, conn: asyncpg.Connection | None = None
    ) -> list[AppendResult]:
        """Append to several streams atomically (one round trip for the rows)."""
        if conn is None:
            async with self.pool.acquire() as own:
                return await self._append_retrying_idempotently(own, appends)
        return await self._append_retrying_idempotently(conn, appends)

    async def _append_retrying_idempotently(
        self, conn: asyncpg.Connection, appends: Sequence[StreamAppend]
    ) -> list[AppendResult]:
        try:
            # A savepoint when the caller has a transaction open, else a transaction.
            async with conn.transaction():
                results = await self._append_in_transaction(conn, appends)
        except asyncpg.UniqueViolationError:
            # Either a concurrent writer took the version, or an identical retry
            # raced us. Tell them apart by looking for our event ids.
            replayed = await self._already_stored(conn, appends)
            if replayed is not None:
                return replayed
            first = appends[0]
            raise ConcurrencyError(first.stream_id, first.expected_version) from None
        if not results or not results[0].replayed:
            for result in results:
                for envelope in result.events:
                    metrics.EVENTS_APPENDED.labels(self.service, envelope.type).inc()
        return results

    async def _append_in_transaction(
        self, conn: asyncpg.Connection, appends: Sequence[StreamAppend]
    ) -> list[AppendResult]:
        replayed = await self._already_stored(conn, appends)
        if replayed is not None:
            return replayed
        stream_ids = [a.stream_id for a in appends]
        if len(set(stream_ids)) != len(stream_ids):
            raise ValueError("append_many takes each stream at most once")
        current = {r["stream_id"]: r["version"] for r in await conn.fetch(self._sql_versions, stream_ids)}

        results: list[AppendResult] = []
        columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        for item in appends:
            actual = current.get(item.stream_id, 0)
            if item.expected_version is not None and item.expected_version != actual:
                raise ConcurrencyError(item.stream_id, item.expected_version, actual)
            stamped = tuple(e.with_sequence(actual + i + 1) for i, e in enumerate(item.events))
            for envelope in stamped:
                if envelope.subject != item.stream_id:
                    raise ValueError(f"event subject {envelope.subject} is not stream {item.stream_id}")
                columns[0].append(envelope.id)
                columns[1].append(item.stream_id)
                columns[2].append(envelope.sequence)
                columns[3].append(envelope.type)
                columns[4].append(dumps(envelope).decode())
            results.append(AppendResult(item.stream_id, actual + len(stamped), stamped))

        if columns[0]:
            await conn.execute(self._sql_insert, *columns, self.topic_prefix)
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        return results

    async def _already_stored(
        self, conn: asyncpg.Connection, appends: Sequence[StreamAppend]
    ) -> list[AppendResult] | None:
        """The original results if every event id is stored already, else None."""
        ids = [e.id for a in appends for e in a.events]
        if not ids:
            return None
        rows = await conn.fetch(self._sql_existing_ids, ids)
        if not rows:
            return None
        if len(rows) != len(ids):
            raise DuplicateEventError(f"{len(rows)} of {len(ids)} event ids exist already")
        found = {r["event_id"]: r for r in rows}
        results = []
        for item in appends:
            stored = [found[e.id] for e in item.events]
            if any(r["stream_id"] != item.stream_id for r in stored):
                raise DuplicateEventError("event id reused on another stream")
            versions = [r["version"] for r in stored]
            events = tuple(e.with_sequence(v) for e, v in zip(item.events, versions, strict=True))
            results.append(AppendResult(item.stream_id, max(versions), events, replayed=True))
        return results

    # -- reading -------------------------------------------------------------

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, conn: asyncpg.Connection | None = None
    ) -> list[Envelope]:
        """The stream's events in version order; ``conn`` reads inside a caller's transaction."""
        rows = await (conn or self.pool).fetch(
            f"SELECT envelope::text FROM {self.schema}.events"
            " WHERE stream_id = $1 AND version > $2 ORDER BY version",
            stream_id,
            after_version,
        )
        return [loads(r[0]) for r in rows]

    async def stream_version(self, stream_id: str) -> int:
        version = await self.pool.fetchval(
            f"SELECT max(version) FROM {self.schema}.events WHERE stream_id = $1", stream_id
        )
        return version or 0

    async def read_all(self, after: Checkpoint = Checkpoint(), limit: int = 1000) -> list[StoredEvent]:
        """Events after ``after`` in (transaction, position) order.

        Only transactions older than every transaction still running are
        returned (``pg_snapshot_xmin``). Identity positions are allocated
        before commit, so a plain ``position > last`` reader can pass a
        position whose transaction commits later and miss it for ever; ordering
        by the writing transaction and stopping at the oldest running one
        cannot.
        """
        rows = await self.pool.fetch(
            f"""SELECT transaction_id::text AS tx, position, envelope::text AS envelope
                FROM {self.schema}.events
                WHERE (transaction_id, position) > ($1::text::xid8, $2)
                  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY transaction_id, position
                LIMIT $3""",
            str(after.transaction_id),
            after.position,
            limit,
        )
        return [StoredEvent(Checkpoint(int(r["tx"]), r["position"]), loads(r["envelope"])) for r in rows]

    async def iterate_all(self, after: Checkpoint = Checkpoint(), batch: int = 1000) -> AsyncIterator[StoredEvent]:
        while True:
            chunk = await self.read_all(after, batch)
            if not chunk:
                return
            for stored in chunk:
                yield stored
            after = chunk[-1].checkpoint

    async def iterate_log_exclusively(self, conn: asyncpg.Connection, batch: int = 1000) -> AsyncIterator[Envelope]:
        """The whole log in position order, for rebuilding a read model kept in
        the writers' own transactions.

        Locks out writers for the rest of the caller's transaction first (the
        lock waits for appends in flight), so no event can commit behind the
        reader and position order is commit order; readers are not blocked.
        Unlike ``read_all``, it does not stop at transactions of other schemas
        still running. ``conn`` must be in a transaction.
        """
        await conn.execute(f"LOCK TABLE {self.schema}.events IN EXCLUSIVE MODE")
        after = 0
        while rows := await conn.fetch(
            f"SELECT position, envelope::text FROM {self.schema}.events WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            batch,
        ):
            for row in rows:
                yield loads(row[1])
            after = rows[-1][0]

    # -- outbox --------------------------------------------------------------

    async def republish_all(self) -> int:
        """Queue the whole log for publishing again (rebuilds, empty brokers).

        Consumers are idempotent, so events they applied already are skipped.
        """
        status = await self.pool.execute(
            f"""INSERT INTO {self.schema}.outbox (position, topic)
                SELECT position, $1 || 'binome.' || split_part(type, '.', 2) || '.events'
                FROM {self.schema}.events ORDER BY position
                ON CONFLICT (position) DO NOTHING"""
            ,
            self.topic_prefix,
        )
        await self.pool.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        return int(status.split()[-1])


__all__ = [
    "AppendResult",
    "Checkpoint",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventStore",
    "StoredEvent",
    "StreamAppend",
    "notify_channel",
    "topic_for_context",
]

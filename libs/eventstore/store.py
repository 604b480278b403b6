"""The event store of one service: a PostgreSQL table of CloudEvents envelopes.

* ``append`` names the version it expects; two writers racing on one stream
  cannot both win (unique ``(stream_id, version)``), the loser gets
  ``ConcurrencyError`` (HTTP 409).
* Appends are idempotent by event id: retrying an append whose reply was lost
  writes nothing more and returns the original result.
* The events and their outbox rows commit in one statement (transactional
  outbox); ``pg_notify`` then wakes the relay.
* ``read_all`` walks the whole log in commit-safe order (see its docstring).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.events.envelope import Envelope, topic_for_context
from libs.events.serialization import dumps, loads
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import PersonalData
from libs.observability import metrics

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class StoredRecord:
    """An event as stored (personal values still sealed, JSON not parsed),
    for readers that decode and open in bulk themselves (replays)."""

    checkpoint: Checkpoint
    recorded_at: datetime
    raw: str


def notify_channel(schema: str) -> str:
    return f"binome_outbox_{schema}"


#: Active relays running in this process, by (pool, schema): an append through
#: the same pool wakes its relay with a function call instead of a NOTIFY round
#: trip. Writers elsewhere use NOTIFY, which every active relay listens to.
_local_relays: dict[tuple[asyncpg.Pool, str], Callable[[], None]] = {}


@contextmanager
def local_relay(pool: asyncpg.Pool, schema: str, wake: Callable[[], None]) -> Iterator[None]:
    """Register the active relay of ``schema`` for in-process wake-ups while inside."""
    key = (pool, schema)
    _local_relays[key] = wake
    try:
        yield
    finally:
        if _local_relays.get(key) is wake:
            del _local_relays[key]


class EventStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        topic_prefix: str = "",
        service: str | None = None,
        personal: PersonalData | None = None,
    ):
        self.pool = pool
        #: GDPR: seals personal fields before they are stored and opens them
        #: on every read (libs/gdpr). None: events are stored as given.
        self.personal = personal
        self.schema = check_schema_name(schema)
        self.service = service or schema
        self.topic_prefix = topic_prefix
        s = self.schema
        # The whole append in one call, so that without a caller's transaction
        # it runs in autocommit: one round trip, no BEGIN/COMMIT; inside one, a
        # conflict leaves it usable with no savepoint round trips either. The
        # function (migrations/0006_append_function.sql) reads each stream's
        # version, checks the expected ones, inserts the events and their
        # outbox rows only if every check holds, and returns per stream the
        # version found and whether the checks held; no row if a version or an
        # event id was taken meanwhile. ``$9``, the channel, wakes the relays
        # from inside a caller's transaction (delivered when it commits).
        self._sql_append = f"""
            SELECT stream_id, expected, actual, ok FROM {s}.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
        """Append to several streams atomically, in one statement."""
        if not appends:
            return []
        # What is stored (and so published) has its personal values sealed;
        # the results keep the caller's envelopes, which it may project now.
        columns = self._columns(await self._sealed(appends, conn))
        if conn is None:
            async with self.pool.acquire() as own:
                return await self._append_and_notify(own, appends, columns)
        return await self._append_and_notify(conn, appends, columns)

    async def _append_and_notify(
        self, conn: asyncpg.Connection, appends: Sequence[StreamAppend], columns: tuple
    ) -> list[AppendResult]:
        in_transaction = conn.is_in_transaction()
        results = await self._append_or_replay(conn, appends, columns, in_transaction)
        # In a transaction, the append itself notified: delivered when the
        # caller commits, dropped if it rolls back.
        if columns[0] and not results[0].replayed and not in_transaction:
            await self._wake_relay(conn)
        if not results[0].replayed:
            appended = Counter(envelope.type for result in results for envelope in result.events)
            for event_type, count in appended.items():
                metrics.EVENTS_APPENDED.labels(self.service, event_type).inc(count)
        return results

    async def _sealed(self, appends: Sequence[StreamAppend], conn: asyncpg.Connection | None) -> Sequence[StreamAppend]:
        if self.personal is None:
            return appends
        vault_conn = self.personal.vault_connection(self.pool, conn)
        return [
            StreamAppend(a.stream_id, a.expected_version, await self.personal.seal(a.events, conn=vault_conn))
            for a in appends
        ]

    async def _opened(self, envelopes: list[Envelope], conn: asyncpg.Connection | None = None) -> list[Envelope]:
        if self.personal is None:
            return envelopes
        return await self.personal.open(envelopes, conn=self.personal.vault_connection(self.pool, conn))

    def _columns(self, appends: Sequence[StreamAppend]) -> tuple[list, list, list, list, list]:
        """The events as the statement's arrays: id, stream, position in its append, type, JSON."""
        stream_ids = [a.stream_id for a in appends]
        if len(set(stream_ids)) != len(stream_ids):
            raise ValueError("append_many takes each stream at most once")
        columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        for item in appends:
            for nth, envelope in enumerate(item.events, start=1):
                if envelope.subject != item.stream_id:
                    raise ValueError(f"event subject {envelope.subject} is not stream {item.stream_id}")
                columns[0].append(envelope.id)
                columns[1].append(item.stream_id)
                columns[2].append(nth)
                columns[3].append(envelope.type)
                columns[4].append(dumps(envelope).decode())  # its stream version is stamped in SQL
        return columns

    async def _append_or_replay(
        self, conn: asyncpg.Connection, appends: Sequence[StreamAppend], columns: tuple, in_transaction: bool
    ) -> list[AppendResult]:
        """Append; a retry of an append already stored returns the original result.

        No look-up of the event ids beforehand: a retry is rare, so it is
        detected only when the append fails (its versions or ids are taken).
        """
        channel = notify_channel(self.schema) if in_transaction else None
        streams = ([a.stream_id for a in appends], [a.expected_version for a in appends])
        args = (*streams, *columns, self.topic_prefix, channel)
        rows = await conn.fetch(self._sql_append, *args)
        conflict: ConcurrencyError
        if not rows:
            # A concurrent writer took the version, or an identical retry raced us.
            first = appends[0]
            conflict = ConcurrencyError(first.stream_id, first.expected_version)
        elif rows[0]["ok"]:
            actual = {r["stream_id"]: r["actual"] for r in rows}
            return [self._stamped(item, actual[item.stream_id]) for item in appends]
        else:
            # A stale expected version, or a retry finding the stream moved on.
            stale = next(r for r in rows if r["expected"] is not None and r["expected"] != r["actual"])
            conflict = ConcurrencyError(stale["stream_id"], stale["expected"], stale["actual"])
        replayed = await self._already_stored(conn, appends)
        if replayed is not None:
            return replayed
        raise conflict

    @staticmethod
    def _stamped(item: StreamAppend, actual: int) -> AppendResult:
        events = tuple(e.with_sequence(actual + i) for i, e in enumerate(item.events, start=1))
        return AppendResult(item.stream_id, actual + len(events), events)

    async def _wake_relay(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        """Wake the relay once the events committed.

        Directly if it runs in this process; else a NOTIFY in its own
        statement, not inside the append: PostgreSQL serialises the commits of
        transactions that NOTIFY (a global lock held through the WAL flush),
        which halved concurrent append throughput here. If the NOTIFY fails,
        the events are stored all the same and the relay's poll finds them.
        """
        wake = _local_relays.get((self.pool, self.schema))
        if wake is not None:
            wake()
            return
        try:
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            log.warning("relay wake-up for %s failed; its poll will find the events", self.schema, exc_info=True)

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
        return await self._opened([loads(r[0]) for r in rows], conn)

    async def read_streams(
        self, stream_ids: Sequence[str], *, conn: asyncpg.Connection | None = None
    ) -> dict[str, list[Envelope]]:
        """Several streams in one statement (one round trip): each one's events
        in version order, keyed by stream id; a stream with no events is absent."""
        rows = await (conn or self.pool).fetch(
            f"SELECT stream_id, envelope::text FROM {self.schema}.events"
            " WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
            list(stream_ids),
        )
        opened = await self._opened([loads(r[1]) for r in rows], conn)
        streams: dict[str, list[Envelope]] = {}
        for row, envelope in zip(rows, opened, strict=True):
            streams.setdefault(row[0], []).append(envelope)
        return streams

    async def stream_version(self, stream_id: str, *, conn: asyncpg.Connection | None = None) -> int:
        """The stream's version (0: no such stream); ``conn`` reads inside a caller's transaction."""
        version = await (conn or self.pool).fetchval(
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
        records = await self.read_records(after, limit)
        envelopes = await self._opened([loads(r.raw) for r in records])
        return [StoredEvent(r.checkpoint, e) for r, e in zip(records, envelopes, strict=True)]

    async def read_records(self, after: Checkpoint = Checkpoint(), limit: int = 1000) -> list[StoredRecord]:
        """``read_all``'s events as stored: sealed, unparsed, with when each was recorded."""
        rows = await self.pool.fetch(
            f"""SELECT transaction_id::text AS tx, position, recorded_at, envelope::text AS envelope
                FROM {self.schema}.events
                WHERE (transaction_id, position) > ($1::text::xid8, $2)
                  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY transaction_id, position
                LIMIT $3""",
            str(after.transaction_id),
            after.position,
            limit,
        )
        return [
            StoredRecord(Checkpoint(int(r["tx"]), r["position"]), r["recorded_at"], r["envelope"])
            for r in rows
        ]

    async def read_committed_in(
        self, snapshot: str, after_position: int = 0, limit: int = 1000, *, late: bool = False,
        partition: tuple[int, int] | None = None, up_to_position: int | None = None,
    ) -> list[StoredRecord]:
        """Events visible in ``snapshot`` (``pg_current_snapshot()::text``),
        after ``after_position``, in position order; ``late``: instead those of
        the transactions that were running in it (read once they ended).

        Position order is each stream's version order (a version is appended
        only after the one before it committed, so it gets a later position),
        which transaction order is not: a transaction that took its id early
        (an idempotency key claimed first) may append a stream's next version
        with an id lower than the version before it. Visibility in one
        snapshot, unlike a ``position > last`` cursor on a live log, skips
        nothing: the events visible in it are all committed, and the late
        ones are read apart once their transactions ended.

        ``partition`` (index, count): only the streams whose hash falls in
        that part (a stream's events are all in one part), for replay workers
        that share a log. ``up_to_position`` bounds the positions read: a
        partitioned reader should pass one. PostgreSQL cannot estimate the
        hash filter (it guesses 0.5 % of the rows), so with only ``LIMIT`` to
        stop it, it expected to walk the whole log and chose to scan and
        sort all of it (4 s for the first chunk of a 540,000-event log here)
        or to run the index scan in parallel workers (launched per chunk);
        over a bounded range it walks the position index.
        """
        which = (
            "transaction_id = ANY(ARRAY(SELECT pg_snapshot_xip($1::text::pg_snapshot)))"
            if late
            else "pg_visible_in_snapshot(transaction_id, $1::text::pg_snapshot)"
        )
        args: list[object] = [snapshot, after_position, limit]
        if partition is not None:
            which += " AND (hashtext(stream_id) & 2147483647) % $4 = $5"
            args += [partition[1], partition[0]]
        if up_to_position is not None:
            args.append(up_to_position)
            which += f" AND position <= ${len(args)}"
        rows = await self.pool.fetch(
            f"""SELECT transaction_id::text AS tx, position, recorded_at, envelope::text AS envelope
                FROM {self.schema}.events
                WHERE position > $2 AND {which}
                ORDER BY position
                LIMIT $3""",
            *args,
        )
        return [
            StoredRecord(Checkpoint(int(r["tx"]), r["position"]), r["recorded_at"], r["envelope"])
            for r in rows
        ]

    async def last_position(self) -> int:
        """The highest position stored (0 for an empty log). Read after a
        snapshot was taken, it bounds every event visible in that snapshot:
        those committed before it, so positioned before it too."""
        return await self.pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {self.schema}.events")

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
            for envelope in await self._opened([loads(row[1]) for row in rows], conn):
                yield envelope
            after = rows[-1][0]

    # -- outbox --------------------------------------------------------------

    async def republish_after(self, after: Checkpoint) -> int:
        """Queue again the events after ``after`` in commit-safe order (see
        ``read_all``): what some consumer may still need after the broker lost
        what it held. ``Checkpoint()`` queues the whole log.

        No ORDER BY: the relay reads the outbox in position order anyway, and
        ordering here let the planner walk the whole primary key to find the
        few events after a recent checkpoint."""
        status = await self.pool.execute(
            f"""INSERT INTO {self.schema}.outbox (position, topic)
                SELECT position, $1 || 'binome.' || split_part(type, '.', 2) || '.events'
                FROM {self.schema}.events
                WHERE (transaction_id, position) > ($2::text::xid8, $3)
                ON CONFLICT (position) DO NOTHING""",
            self.topic_prefix,
            str(after.transaction_id),
            after.position,
        )
        queued = int(status.split()[-1])
        if queued:
            await self._wake_relay(self.pool)
        return queued

    async def republish_all(self) -> int:
        """Queue the whole log for publishing again (rebuilds).

        Consumers are idempotent, so events they applied already are skipped.
        """
        return await self.republish_after(Checkpoint())


__all__ = [
    "AppendResult",
    "Checkpoint",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventStore",
    "StoredEvent",
    "StoredRecord",
    "StreamAppend",
    "local_relay",
    "notify_channel",
    "topic_for_context",
]

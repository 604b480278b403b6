"""Dead letters: the events a consumer parked because they can never apply,
kept in PostgreSQL, listed for ops and redriven.

A consumer parks an event (libs/messaging/consumer.py) in the transaction
that claims it in ``applied_events`` (outcome ``dead_lettered``): the row
here and the claim commit together, so a parked event is never lost and never
applied behind the operator's back. The row holds the record's key and value,
so a redrive needs no broker (the embedded one forgets its dead-letter topic
on restart).

A redrive re-applies each row through the projection, in a savepoint of the
caller's transaction, the row locked (two redrives never apply it twice):
success deletes the row and marks the event applied; failure keeps the row
with one more attempt, the new reason and when. The API
(libs/messaging/deadletters_api.py) and ``binome redrive`` share this code.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import asyncpg
from aiokafka import ConsumerRecord

from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry, registry as default_registry
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import PersonalData
from libs.messaging.kafka import position_of
from libs.observability.correlation import correlation

if TYPE_CHECKING:  # the consumer runtime imports this module
    from libs.messaging.consumer import Projection

#: Reasons are kept to this many characters (an exception may carry a page).
MAX_REASON = 1000

RedriveOutcome = Literal["applied", "already_applied", "failed"]


def reason_of(exc: BaseException, kind: str | None = None) -> str:
    """``"<kind>: <Exception>: <message>"``; the part before the first colon
    is the metric's reason label (``undecodable``, ``invalid``, ``ValueError``).

    The message's first line only: PostgreSQL's DETAIL line quotes the failing
    row, which may hold personal data, and reasons are logged and stored.
    """
    first_line = next(iter(str(exc).splitlines()), "")
    text = f"{type(exc).__name__}: {first_line}"
    return (f"{kind}: {text}" if kind else text)[:MAX_REASON]


@dataclass(frozen=True)
class Parked:
    """A record a consumer gives up on, and why."""

    record: ConsumerRecord
    reason: str
    attempts: int
    envelope: Envelope | None = None  # None: it did not decode

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True)
class RedriveResult:
    id: int
    event_id: uuid.UUID | None
    outcome: RedriveOutcome
    attempts: int
    reason: str | None = None


class DeadLetters:
    """The ``dead_letters`` table of one service schema."""

    def __init__(self, schema: str) -> None:
        self.schema = s = check_schema_name(schema)
        self._sql_park = f"""
            INSERT INTO {s}.dead_letters AS d (consumer, event_id, event_type, tenant, topic, partition, "offset",
                                               source_position, reason, attempts, record_key, record_value)
            SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[],
                                     $8::bigint[], $9::text[], $10::int[], $11::bytea[], $12::bytea[])
            ON CONFLICT (consumer, event_id) DO UPDATE
                SET attempts = d.attempts + EXCLUDED.attempts, reason = EXCLUDED.reason,
                    last_failed_at = clock_timestamp()"""
        self._sql_claimed_dead = f"""
            UPDATE {s}.applied_events a SET outcome = 'dead_lettered', reason = t.reason
            FROM unnest($2::uuid[], $3::text[]) AS t(event_id, reason)
            WHERE a.consumer = $1 AND a.event_id = t.event_id"""
        # The caller's organisation sees its own rows and those of no known
        # organisation (undecodable records); None (the CLI) sees every row.
        self._sql_page = f"""
            SELECT id, consumer, event_id, event_type, tenant, topic, partition, "offset", source_position,
                   reason, attempts, first_failed_at, last_failed_at
            FROM {s}.dead_letters
            WHERE ($1::text IS NULL OR consumer = $1)
              AND ($2::text IS NULL OR tenant = $2 OR tenant IS NULL)
              AND id > $3
            ORDER BY id LIMIT $4"""
        self._sql_lock = f"""
            SELECT id, event_id, attempts, record_value FROM {s}.dead_letters
            WHERE consumer = $1 AND ($2::uuid IS NULL OR event_id = $2)
              AND ($3::text IS NULL OR tenant = $3 OR tenant IS NULL)
            ORDER BY id FOR UPDATE"""
        self._sql_mark_applied = f"""
            INSERT INTO {s}.applied_events AS a (consumer, event_id) VALUES ($1, $2)
            ON CONFLICT (consumer, event_id) DO UPDATE
                SET outcome = 'applied', reason = NULL, applied_at = clock_timestamp()
                WHERE a.outcome = 'dead_lettered'
            RETURNING true"""
        self._sql_failed_again = f"""
            UPDATE {s}.dead_letters SET attempts = attempts + 1, reason = $2, last_failed_at = clock_timestamp()
            WHERE id = $1 RETURNING attempts"""
        self._sql_delete = f"DELETE FROM {s}.dead_letters WHERE id = $1"

    async def park(self, conn: asyncpg.Connection, consumer: str, parked: Sequence[Parked]) -> None:
        """Store ``parked`` and mark their claims dead-lettered, in the caller's transaction."""
        if not parked:
            return
        envelopes = [p.envelope for p in parked]
        await conn.execute(
            self._sql_park,
            consumer,
            [e.id if e else None for e in envelopes],
            [e.type if e else None for e in envelopes],
            [e.tenant if e else None for e in envelopes],
            [p.record.topic for p in parked],
            [p.record.partition for p in parked],
            [p.record.offset for p in parked],
            [position_of(p.record.headers) for p in parked],
            [p.reason for p in parked],
            [p.attempts for p in parked],
            [p.record.key for p in parked],
            [p.record.value for p in parked],
        )
        claimed = [p for p in parked if p.envelope is not None]
        if claimed:
            await conn.execute(
                self._sql_claimed_dead, consumer, [p.envelope.id for p in claimed], [p.reason for p in claimed]
            )

    async def lock(
        self, conn: asyncpg.Connection, consumer: str, event_id: uuid.UUID | None, organisation: str | None
    ) -> list[asyncpg.Record]:
        """``consumer``'s rows (one event's, or all), locked until the caller's transaction ends."""
        return await conn.fetch(self._sql_lock, consumer, event_id, organisation)

    async def mark_applied(self, conn: asyncpg.Connection, consumer: str, event_id: uuid.UUID) -> bool:
        """Claim a parked event as applied; False if it was applied already."""
        return bool(await conn.fetchval(self._sql_mark_applied, consumer, event_id))

    async def failed_again(self, conn: asyncpg.Connection, row_id: int, reason: str) -> int:
        """One more failed attempt of a row; returns its attempts."""
        return await conn.fetchval(self._sql_failed_again, row_id, reason)

    async def remove(self, conn: asyncpg.Connection, row_id: int) -> None:
        await conn.execute(self._sql_delete, row_id)

    async def page(
        self,
        db: asyncpg.Pool | asyncpg.Connection,
        *,
        consumer: str | None,
        organisation: str | None,
        after_id: int | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        """Rows in the order they were parked, after ``after_id`` (keyset pagination)."""
        return await db.fetch(self._sql_page, consumer, organisation, after_id or 0, limit)


@dataclass
class Redriver:
    """Re-applies a service's dead letters through its projections."""

    pool: asyncpg.Pool
    schema: str
    #: The service's projections by name (the consumer names of its rows).
    projections: Mapping[str, Projection]
    personal: PersonalData | None = None
    registry: EventRegistry = field(default_factory=lambda: default_registry)

    def __post_init__(self) -> None:
        self.dead_letters = DeadLetters(self.schema)

    async def redrive(
        self,
        conn: asyncpg.Connection,
        consumer: str,
        *,
        event_id: uuid.UUID | None = None,
        organisation: str | None = None,
    ) -> list[RedriveResult]:
        """Redrive ``consumer``'s rows (one event, or all), inside the caller's transaction.

        ``organisation``: only its rows and those of no known organisation.
        """
        projection = self.projections[consumer]
        rows = await self.dead_letters.lock(conn, consumer, event_id, organisation)
        return [await self._redrive_one(conn, projection, row) for row in rows]

    async def _redrive_one(self, conn: asyncpg.Connection, projection: Projection, row: asyncpg.Record) -> RedriveResult:
        try:
            async with conn.transaction():  # savepoint: a failure undoes only this event
                applied = await self._apply(conn, projection, bytes(row["record_value"]))
        except Exception as exc:
            reason = exc.args[0] if isinstance(exc, _Refused) else reason_of(exc)
            attempts = await self.dead_letters.failed_again(conn, row["id"], reason)
            return RedriveResult(row["id"], row["event_id"], "failed", attempts, reason)
        await self.dead_letters.remove(conn, row["id"])
        return RedriveResult(row["id"], row["event_id"], "applied" if applied else "already_applied", row["attempts"])

    async def _apply(self, conn: asyncpg.Connection, projection: Projection, value: bytes) -> bool:
        """Apply the record; False if the event was applied already (nothing done)."""
        try:
            envelope = Envelope.model_validate_json(value)
        except Exception as exc:
            raise _Refused(reason_of(exc, "undecodable")) from exc
        if self.personal is not None:
            vault_conn = self.personal.vault_connection(self.pool, conn)
            envelope = (await self.personal.open_for(projection, [envelope], conn=vault_conn))[0]
        try:
            event = self.registry.load(envelope)
        except Exception as exc:
            raise _Refused(reason_of(exc, "invalid")) from exc
        if not await self.dead_letters.mark_applied(conn, projection.name, envelope.id):
            return False
        with correlation(envelope.correlationid):
            await projection.handle(conn, envelope, event)
        return True


class _Refused(Exception):
    """The record still does not decode or validate; ``args[0]`` is the reason."""

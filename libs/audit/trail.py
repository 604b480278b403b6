"""One service's audit trail (``<schema>.audit_log``, append-only).

Each service's table comes with its event store (libs/eventstore
migrations); an app without an event store (the platform's root app, whose
trail is the ``binome_platform`` schema) gets the same table from ``migrate_trail``:
``migrations/0001_audit_log.sql`` links to the event store's file, so the two
tables never differ.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from libs.eventstore.migrations import check_schema_name, migrate_directories

if TYPE_CHECKING:
    from libs.audit.spool import AuditSpool

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate_trail(conn: asyncpg.Connection, schema: str) -> list[str]:
    """An audit trail alone in ``schema`` (for an app with no event store)."""
    return await migrate_directories(conn, schema, MIGRATIONS)


def decision_of(status: int) -> str:
    """What a response status says about the attempt."""
    if status in (401, 403, 404, 429):
        # 404 included: a committee asking for another country's object gets
        # 404 so as not to leak it exists, and that is a denial to audit;
        # 429: a client over its rate limit.
        return "denied"
    if 400 <= status < 500:
        return "invalid"
    if status >= 500:
        return "failed"
    return "allowed"


@dataclass(frozen=True)
class AuditRecord:
    action: str
    status: int
    object: dict[str, str]
    subject: str | None = None
    client_id: str | None = None
    organisation: str | None = None
    roles: tuple[str, ...] = ()
    country: str | None = None
    correlation_id: str | None = None
    #: Set when the record is spooled (libs/audit/spool.py): the id that makes
    #: a second shipping of it a no-op, and the instant of the request (the
    #: database's clock at insert time otherwise).
    record_id: str | None = None
    at: datetime | None = None

    @property
    def decision(self) -> str:
        return decision_of(self.status)


@functools.lru_cache(maxsize=64)
def insert_statement(schema: str) -> str:
    """The insert of one record into ``schema``'s trail (``row_of``'s parameters)."""
    return f"""INSERT INTO {check_schema_name(schema)}.audit_log
                    (subject, client_id, organisation, roles, country, action, object,
                     decision, status, correlation_id, record_id, at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11,
                        COALESCE($12::timestamptz, clock_timestamp()))
                ON CONFLICT (record_id) DO NOTHING"""


def row_of(record: AuditRecord) -> tuple[Any, ...]:
    return (
        record.subject,
        record.client_id,
        record.organisation,
        list(record.roles),
        record.country,
        record.action,
        json.dumps(record.object),
        record.decision,
        record.status,
        record.correlation_id,
        record.record_id,
        record.at,
    )


def _settle(batch: list[tuple[AuditRecord, asyncio.Future[None]]], failure: Exception | None) -> None:
    for _, done in batch:
        if done.done():
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)
            done.exception()  # marked retrieved: a caller cancelled meanwhile leaves no "never retrieved" warning


class AuditTrail:
    """Records go in by group commit: ``record`` returns once its record is
    committed; a record that finds every writer busy waits for the next
    free one, which writes all the records waiting in one statement (one
    round trip, one commit). Alone, a record is written at once, as before;
    under load, a statement per request cost more Python than the rest of a
    simple read (bench/api.py). Up to ``writers`` writes run at once, so a
    slow commit does not hold every record behind it.

    With a ``spool`` (``binome up``: libs/audit/spool.py) a record is
    appended to this process's spool file instead, and shipped with the
    others in batches; only a record the spool cannot take is written here."""

    def __init__(self, pool: asyncpg.Pool, schema: str, *, writers: int = 4, spool: AuditSpool | None = None) -> None:
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.writers = writers
        self.spool = spool
        self._insert = insert_statement(self.schema)
        self._waiting: list[tuple[AuditRecord, asyncio.Future[None]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._idle = 0  # writers started that have not taken their batch yet

    async def record(self, record: AuditRecord) -> None:
        """Write ``record``; raises what the write raised. A caller cancelled
        meanwhile does not take its record out of the write."""
        if self.spool is not None:
            try:
                self.spool.append(self.schema, record)
                return
            except OSError as exc:  # a full disk: the database directly, as without a spool
                log.warning("audit spool refused a record (%s): written directly", exc)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((record, done))
        if any(task.get_loop() is not loop for task in self._running):  # a new event loop (tests)
            self._running, self._idle = set(), 0
        if self._idle == 0 and len(self._running) < self.writers:
            self._idle += 1
            task = loop.create_task(self._write_waiting())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        await asyncio.shield(done)

    async def _write_waiting(self) -> None:
        self._idle -= 1
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self.pool.executemany(self._insert, [row_of(r) for r, _ in batch])
            except asyncio.CancelledError:  # the loop stops: nobody waits forever
                waiting, self._waiting = batch + self._waiting, []
                _settle(waiting, RuntimeError("the audit writer was cancelled"))
                raise
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch, exc)  # its caller logs it as not written
                else:  # one bad record must not take the others with it: each alone
                    for one in batch:
                        await self._write_alone(one)
            else:
                _settle(batch, None)

    async def _write_alone(self, waiting: tuple[AuditRecord, asyncio.Future[None]]) -> None:
        try:
            await self.pool.executemany(self._insert, [row_of(waiting[0])])
        except Exception as exc:
            _settle([waiting], exc)
        else:
            _settle([waiting], None)

    async def query(
        self,
        organisation: str,
        *,
        subject: str | None = None,
        decision: str | None = None,
        object_id: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first, within one organisation (denied anonymous attempts
        have no organisation and are visible to ops through logs only).
        This process's spooled records are shipped first; another process's
        are there within its linger (``libs.settings.AUDIT_LINGER_S``)."""
        if self.spool is not None:
            await self.spool.ship()
        rows = await self.pool.fetch(
            f"""SELECT id, at, subject, client_id, organisation, roles, country, action, object,
                       decision, status, correlation_id
                FROM {self.schema}.audit_log
                WHERE organisation = $1
                  AND ($2::text IS NULL OR subject = $2)
                  AND ($3::text IS NULL OR decision = $3)
                  AND ($4::text IS NULL OR object::text LIKE '%' || $4 || '%')
                  AND ($5::timestamptz IS NULL OR at >= $5)
                  AND ($6::bigint IS NULL OR id < $6)
                ORDER BY id DESC LIMIT $7""",
            organisation,
            subject,
            decision,
            object_id,
            since,
            after_id,
            limit,
        )
        return [{**dict(r), "roles": list(r["roles"]), "object": json.loads(r["object"])} for r in rows]

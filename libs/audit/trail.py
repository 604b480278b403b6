"""One service's audit trail (``<schema>.audit_log``, append-only).

Each service's table comes with its event store (libs/eventstore
migrations); an app without an event store (the platform's root app, whose
trail is the ``binome_platform`` schema) gets the same table from ``migrate_trail``:
``migrations/0001_audit_log.sql`` links to the event store's file, so the two
tables never differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from libs.eventstore.migrations import check_schema_name, migrate_directories

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

    @property
    def decision(self) -> str:
        return decision_of(self.status)


class AuditTrail:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = check_schema_name(schema)

    async def record(self, record: AuditRecord) -> None:
        await self.pool.execute(
            f"""INSERT INTO {self.schema}.audit_log
                    (subject, client_id, organisation, roles, country, action, object,
                     decision, status, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)""",
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
        )

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
        have no organisation and are visible to ops through logs only)."""
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

"""Reporting lines: matching's copy of the HR directory's managers.

A consumer of ``binome.directory.events`` that keeps each provisioned
person's employee reference and manager (table ``reporting_lines``). The
pool's queries (service_layer/pool.py) read a candidate's whole manager chain
through ``manager_chain(organisation, employee_ref)`` (migrations/
0002_reporting_lines.sql), so the "same reporting line" hard constraint
excludes a mentor anywhere above the mentee (or the reverse), and a change of
manager anywhere up the chain counts from the next run on.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.contexts.directory import PersonErased, PersonProvisioned, PersonState, PersonUpdated
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.gdpr.personal import known
from libs.messaging.dispatch import Consumer


class ReportingLines(Consumer):
    name = "matching-reporting-lines"
    contexts = ("directory",)

    def __init__(self, schema: str) -> None:
        self.schema = s = check_schema_name(schema)
        self._sql_upsert = f"""
            INSERT INTO {s}.reporting_lines (person_id, organisation, employee_number, manager_id, version)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (person_id) DO UPDATE SET employee_number = EXCLUDED.employee_number,
                manager_id = EXCLUDED.manager_id, version = EXCLUDED.version"""

    async def on_PersonProvisioned(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonProvisioned) -> None:
        await self._person(conn, envelope, event)

    async def on_PersonUpdated(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonUpdated) -> None:
        await self._person(conn, envelope, event)

    async def _person(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonState) -> None:
        manager = known(event.manager_id)
        await conn.execute(
            self._sql_upsert,
            event.person_id,
            envelope.tenant,
            known(event.identity.employee_number),
            UUID(manager) if manager else None,
            envelope.sequence,
        )

    async def on_PersonErased(self, conn: asyncpg.Connection, envelope: Envelope, event: PersonErased) -> None:
        await conn.execute(f"DELETE FROM {self.schema}.reporting_lines WHERE person_id = $1", event.person_id)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.schema}.reporting_lines")

"""Work due on the platform clock: the 24 h notice before a session, a
survey's overdue reminders (at most one a week) and a committee's daily
digest (service_layer/digest.py), with no manual call.

Jobs are rows of ``due_jobs``, written by the consumer in the transaction
that applies the event that makes them due (a restart loses none). Every
instance runs this worker; each takes due jobs with ``FOR UPDATE SKIP
LOCKED`` and marks them done in the same transaction, and the messages a job
queues are named by the job, so a job runs once per platform however many
instances there are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from libs.retry import sleep_unless_stopped
from services.notifications.domain.kinds import Kind
from services.notifications.service_layer.digest import COMMITTEE_DIGEST, Digests
from services.notifications.service_layer.messages import Meeting, Messages

SESSION_REMINDER = "session_reminder"
SURVEY_OVERDUE = "survey_overdue"
#: The notice before a session, and the rhythm and number of overdue reminders.
NOTICE = timedelta(hours=24)
OVERDUE_EVERY = timedelta(days=7)
OVERDUE_REMINDERS = 4
BATCH = 50


class Scheduler:
    def __init__(self, pool: asyncpg.Pool | None, messages: Messages, clock: Callable[[], datetime],
                 poll_interval_s: float = 1.0) -> None:
        self.pool, self.messages, self.clock, self.poll_interval_s = pool, messages, clock, poll_interval_s
        self.digests = Digests(messages)
        s = messages.schema
        self._sql_schedule = f"""
            INSERT INTO {s}.due_jobs (job_id, organisation, kind, subject_id, due_at, payload)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (job_id) DO NOTHING"""
        self._sql_cancel = f"DELETE FROM {s}.due_jobs WHERE subject_id = $1 AND done_at IS NULL"
        self._sql_due = f"""
            SELECT job_id, organisation, kind, subject_id, due_at, payload::text FROM {s}.due_jobs
            WHERE done_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"""
        self._sql_done = f"UPDATE {s}.due_jobs SET done_at = $2 WHERE job_id = $1"
        self._sql_again = f"UPDATE {s}.due_jobs SET due_at = $2, payload = $3::jsonb WHERE job_id = $1"

    # -- written by the consumer, in its transaction --------------------------

    async def schedule(
        self, conn: asyncpg.Connection, job_id: str, organisation: str, kind: str, subject_id: UUID,
        due_at: datetime, payload: dict[str, Any],
    ) -> None:
        await conn.execute(self._sql_schedule, job_id, organisation, kind, subject_id, due_at, json.dumps(payload))

    async def cancel(self, conn: asyncpg.Connection, subject_id: UUID) -> None:
        """Drop what is still due about a session or an assignment."""
        await conn.execute(self._sql_cancel, subject_id)

    # -- the worker -----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self.run_due():
                await sleep_unless_stopped(stop, self.poll_interval_s)

    async def run_due(self) -> int:
        """Run the jobs due by the platform clock; returns how many ran."""
        assert self.pool is not None
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(self._sql_due, now)
            for row in rows:
                payload = json.loads(row["payload"])
                if row["kind"] == SESSION_REMINDER:
                    await self._session_reminder(conn, row, payload)
                elif row["kind"] == SURVEY_OVERDUE:
                    await self._survey_overdue(conn, row, payload)
                    if payload["reminder"] < OVERDUE_REMINDERS:
                        payload["reminder"] += 1
                        await conn.execute(self._sql_again, row["job_id"], row["due_at"] + OVERDUE_EVERY,
                                           json.dumps(payload))
                        continue
                elif row["kind"] == COMMITTEE_DIGEST:
                    await self.digests.send(conn, row["job_id"], row["organisation"], payload["country"])
                await conn.execute(self._sql_done, row["job_id"], now)
            return len(rows)

    async def _session_reminder(self, conn: asyncpg.Connection, row: asyncpg.Record, payload: dict[str, Any]) -> None:
        await self.messages.to_pair(
            conn,
            organisation=row["organisation"],
            country=payload["country"],
            kind=Kind.SESSION_REMINDER,
            source_event_id=row["job_id"],
            members=(UUID(payload["mentee_id"]), UUID(payload["mentor_id"])),
            meeting=Meeting(
                session_id=row["subject_id"],
                starts_at=datetime.fromisoformat(payload["starts_at"]),
                duration_minutes=payload["duration_minutes"],
                sequence=payload["sequence"],
            ),
        )

    async def _survey_overdue(self, conn: asyncpg.Connection, row: asyncpg.Record, payload: dict[str, Any]) -> None:
        await self.messages.to_one(
            conn,
            organisation=row["organisation"],
            country=payload["country"],
            kind=Kind.SURVEY_OVERDUE,
            source_event_id=f"{row['job_id']}:{payload['reminder']}",
            participant_id=UUID(payload["participant_id"]),
            values={"due": datetime.fromisoformat(payload["due_at"])},
        )
